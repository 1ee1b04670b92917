"""Where messages go: the ring owner of a resource, the shared API portal, nodes that left."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from tests.contract.conftest import Cluster
from tests.contract.messages import (
    ContractForwardMsg,
    ContractNodeReply,
    ContractPortalMsg,
    ContractRouteMsg,
    ContractSlowMsg,
)
from zstackpy.core.bus import CloudBus, Message, Reply
from zstackpy.core.errors import SysErr
from zstackpy.core.ids import new_uuid


async def serve_node_id(bus: CloudBus, service: str) -> None:
    async def who(msg: Message) -> Reply:
        return ContractNodeReply(node=bus.node_uuid)

    await bus.register(service, who)


async def test_a_resource_message_goes_to_its_ring_owner(cluster: Cluster) -> None:
    nodes = await cluster.start(3)
    for bus in nodes:
        await serve_node_id(bus, ContractRouteMsg.service)
    resources = [new_uuid() for _ in range(30)]

    owners: set[str] = set()
    for sender in nodes:
        for resource in resources:
            reply = await sender.call(ContractRouteMsg(resource_uuid=resource))
            assert isinstance(reply, ContractNodeReply)
            assert reply.node == sender.ring.owner(resource)
            owners.add(reply.node)

    assert len(owners) >= 2  # the routing was really exercised across nodes


async def test_api_portal_messages_are_spread_over_the_nodes(cluster: Cluster) -> None:
    nodes = await cluster.start(3)
    for bus in nodes:
        await serve_node_id(bus, ContractPortalMsg.service)

    replies = [await nodes[0].call(ContractPortalMsg(value=i)) for i in range(60)]

    served = Counter(r.node for r in replies if isinstance(r, ContractNodeReply))
    assert sum(served.values()) == 60
    assert set(served) == {bus.node_uuid for bus in nodes}
    assert min(served.values()) >= 5


async def test_the_portal_forwards_to_the_owning_service_on_the_ring_owner(
    cluster: Cluster,
) -> None:
    nodes = await cluster.start(3)
    for bus in nodes:
        await serve_node_id(bus, "contract.owner")

        async def portal(msg: Message, bus: CloudBus = bus) -> Reply | None:
            assert isinstance(msg, ContractForwardMsg)
            return await bus.call(msg, service="contract.owner")

        await bus.register(ContractForwardMsg.service, portal)
    resources = [new_uuid() for _ in range(20)]

    replies = [await nodes[0].call(ContractForwardMsg(resource_uuid=r)) for r in resources]

    owners = [nodes[0].ring.owner(r) for r in resources]
    assert [r.node for r in replies if isinstance(r, ContractNodeReply)] == owners


async def test_node_left_fails_its_calls_at_once(cluster: Cluster) -> None:
    a, b = await cluster.start(2)
    entered = asyncio.Event()
    never = asyncio.Event()

    async def stuck(msg: Message) -> Reply:
        entered.set()
        await never.wait()
        return Reply()

    await b.register(ContractSlowMsg.service, stuck)
    call = asyncio.create_task(a.call(ContractSlowMsg(), node=b.node_uuid, timeout=60))
    await asyncio.wait_for(entered.wait(), 10)
    assert a.in_flight(b.node_uuid) == 1

    started = time.monotonic()
    assert a.node_left(b.node_uuid) == 1
    reply = await asyncio.wait_for(call, 5)

    assert time.monotonic() - started < 1
    assert reply.error is not None
    assert reply.error.code == SysErr.MANAGEMENT_NODE_UNAVAILABLE
    assert reply.error.details["node"] == b.node_uuid
    assert a.in_flight(b.node_uuid) == 0
    assert a.in_flight() == 0


async def test_a_call_to_a_node_outside_the_ring_fails_at_once(cluster: Cluster) -> None:
    a, b = await cluster.start(2)
    await serve_node_id(b, ContractSlowMsg.service)
    a.ring.remove(b.node_uuid)

    started = time.monotonic()
    reply = await a.call(ContractSlowMsg(), node=b.node_uuid, timeout=60)

    assert time.monotonic() - started < 1
    assert reply.error is not None
    assert reply.error.code == SysErr.MANAGEMENT_NODE_UNAVAILABLE
    assert a.in_flight() == 0
