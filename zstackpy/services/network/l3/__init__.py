"""L3 networks: the networks themselves, their DNS servers and IP ranges."""
