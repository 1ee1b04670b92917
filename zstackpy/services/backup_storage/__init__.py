"""Backup storage: the type-independent part, zone attachment, capacity."""
