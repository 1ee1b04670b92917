"""The virtual-router appliance's agent: what runs inside the appliance VM on port 7272
(SNAT, EIPs, port forwarding with iptables; DHCP/DNS with dnsmasq; load balancers with
haproxy). See ``agents/README.md``."""
