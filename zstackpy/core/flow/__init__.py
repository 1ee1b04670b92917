"""Flows: steps with rollback, run in chains declared in ``flows/*.yaml``.

A service registers its ``Flow`` factories by kebab-case id; YAML files name the chains;
``FlowRegistry.run(chain, ctx)`` runs one and returns its ``FlowTrace``.
"""

from zstackpy.core.flow.collect import TraceCollector, collecting
from zstackpy.core.flow.engine import Flow, FlowChain, FlowFactory
from zstackpy.core.flow.loader import FlowDefinitionError
from zstackpy.core.flow.registry import FlowRegistry
from zstackpy.core.flow.trace import FlowTrace, Outcome, TraceEntry, trace_of

__all__ = [
    "Flow",
    "FlowChain",
    "FlowDefinitionError",
    "FlowFactory",
    "FlowRegistry",
    "FlowTrace",
    "Outcome",
    "TraceCollector",
    "TraceEntry",
    "collecting",
    "trace_of",
]
