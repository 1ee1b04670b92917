"""The stress driver (``zstack-stress`` / ``python -m simulator.stress``) and what it shares
with the benchmarks: a REST client that follows async jobs with bounded polling, building a
data center of simulated hosts over the API, and starting a simulator and an embedded node
as processes.
"""
