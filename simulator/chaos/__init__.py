"""The chaos harness: load a simulated data center, inject one fault at a time, check the
six reliability invariants, print a table (``docs/reliability.md``)."""
