"""The host allocator: chooses a host for a VM (``flows/host-allocate.yaml``) and reserves
its CPU and memory through the host's work queue."""
