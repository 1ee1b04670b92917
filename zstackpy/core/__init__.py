"""The management-node kernel: bus, ring, heartbeat, work queues, flows, plugins, data.

Nothing in ``core`` imports a service.
"""
