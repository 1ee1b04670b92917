"""Images: added from a URL, stored on backup storage."""
