"""zstack-cli: ZStack's command-line habits over zstackpy's REST API.

A client only: it reads the action list from the node's OpenAPI document and never imports
the node's own packages. Modules import their heavy dependencies (rich, prompt_toolkit)
inside the functions that need them, so a one-shot ``-o json`` command starts fast.
"""
