"""Clusters: groups of hosts of one hypervisor type inside a zone."""
