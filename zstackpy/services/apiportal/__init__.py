"""The API portal: the one entry every API message goes through, on any node."""
