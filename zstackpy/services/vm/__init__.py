"""VM instances: creation on flow chains, lifecycle in each VM's queue, NICs, state sync."""
