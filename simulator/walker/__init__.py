"""Model-based testing of a node: random API walks checked against a model of the cloud,
with every walk written to an action log that replays it (seed 001's model-based tests and
log replay).

- ``model``: what the cloud should look like, and each action's precondition and effect.
- ``steps``: the actions as data (what the log holds).
- ``cloud``: a node (or a few) with simulated hosts and the walk's data center.
- ``actions``: each action done over the REST API and judged against the model.
- ``invariants``: what must hold after every step.
- ``actionlog``: the log's format.
- ``machine``: Hypothesis' state machine that picks the actions and shrinks a failure.
- ``runner``: walk, and save a shrunk failure as a regression.
- ``replay``: re-run a log's example on a fresh node.
- ``reduce``: shrink a failing example further by deleting logged steps.
- ``cli``: ``python -m simulator.walker walk|replay``.
"""
