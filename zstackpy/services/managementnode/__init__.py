"""The managementNode service: what a node knows about itself and the ring."""
