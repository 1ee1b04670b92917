"""The management node process: assembly, HTTP and command line."""
