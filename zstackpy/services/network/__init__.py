"""L2 networks (NoVlan, Vlan), L3 networks, IP ranges, DNS and IPAM."""
