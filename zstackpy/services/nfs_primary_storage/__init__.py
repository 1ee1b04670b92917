"""NFS primary storage: one share mounted on every host of its clusters."""
