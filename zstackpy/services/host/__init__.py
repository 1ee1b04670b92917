"""Hosts: the hypervisor-independent part (inventory, state, status, ping, capacity,
allocation). KVM specifics live in ``services/kvm``."""
