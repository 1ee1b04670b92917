"""KVM hosts: AddKVMHost, the connect flow over the KVM agent."""
