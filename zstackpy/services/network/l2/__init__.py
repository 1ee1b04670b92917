"""L2 networks: NoVlan and Vlan networks, their attachment to clusters, their bridges."""
