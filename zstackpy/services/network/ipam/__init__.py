"""IP address management: allocation and release (internal messages) and the read-only
address APIs."""
