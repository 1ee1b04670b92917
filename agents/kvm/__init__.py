"""The KVM agent: the host side of a real KVM host, on the agent runtime and libvirt.
See ``agents/README.md``."""
