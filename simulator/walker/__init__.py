"""Model-based testing of a node: random API walks checked against a model of the cloud,
with every walk written to an action log that replays it (seed 001's model-based tests and
log replay).

- ``model``: what the cloud should look like, and each action's precondition and effect.
- ``steps``: the actions as data (what the log holds).
- ``cloud``: a node with simulated hosts, and each action done over its REST API.
- ``invariants``: what must hold after every step.
- ``actionlog``: the log's format.
- ``machine``: Hypothesis' state machine that picks the actions and shrinks a failure.
- ``runner``: walk, replay, save a shrunk failure as a regression.
"""
