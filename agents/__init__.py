"""Host-side agents: the shared runtime (``agents.runtime``) that speaks the node's agent
protocol; the real KVM agent will be built on it."""
