"""Local primary storage: each host's own disk."""
