"""Primary storage: the type-independent part, cluster attachment, capacity."""
