"""zstackpy: an IaaS management node on ZStack's architecture."""

__version__ = "0.1.0"
