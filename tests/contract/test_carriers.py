"""Context carriers: what a caller collects crosses to the node that handles its call and
comes back with the reply (the flow traces an API job shows), on both transports; a call
that stays on the node is not counted twice."""

from __future__ import annotations

import asyncio
import time

from tests.contract.conftest import Cluster, uuid_owned_by
from tests.contract.messages import ContractEchoMsg, ContractEchoReply, ContractRouteMsg
from zstackpy.core.bus import CloudBus, Message, Reply
from zstackpy.core.flow.collect import TraceCarrier, collecting, record_trace
from zstackpy.core.flow.trace import FlowTrace


async def _serve_chain_runner(bus: CloudBus, chain: str) -> None:
    """A handler that runs (records) a chain, as a service's flow would."""

    async def run(msg: Message) -> Reply:
        record_trace(FlowTrace(chain=chain, started_at=time.time(), steps=1))
        return ContractEchoReply(value=1, node=bus.node_uuid)

    await bus.register(ContractRouteMsg.service, run)
    await bus.register(ContractEchoMsg.service, run)


async def test_traces_of_another_node_come_back_to_the_caller(cluster: Cluster) -> None:
    a, b = await cluster.start(2)
    for bus in (a, b):
        bus.carriers.append(TraceCarrier())
    await _serve_chain_runner(b, "remote-chain")
    await _serve_chain_runner(a, "local-chain")
    owned_by_b = uuid_owned_by(a.ring, b.node_uuid)

    async def job() -> list[str]:
        collector = collecting()
        remote = await a.call(ContractRouteMsg(resource_uuid=owned_by_b))
        local = await a.call(ContractEchoMsg(), node=a.node_uuid)
        assert remote.success
        assert local.success
        return [t["chain"] for t in collector.close()]

    # A task of its own, as an API job's: the collector belongs to it.
    assert await asyncio.create_task(job()) == ["remote-chain", "local-chain"]
