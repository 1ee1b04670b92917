"""Events: every subscribed node gets each one, the publisher included."""

from __future__ import annotations

import asyncio

from tests.contract.conftest import Cluster, eventually
from tests.contract.messages import ContractHappenedEvent, ContractUnheardEvent


async def test_an_event_reaches_every_subscribed_node(cluster: Cluster) -> None:
    nodes = await cluster.start(3)
    seen: dict[str, list[int]] = {bus.node_uuid: [] for bus in nodes}
    for bus in nodes:

        async def record(event: ContractHappenedEvent, node: str = bus.node_uuid) -> None:
            seen[node].append(event.value)

        await bus.subscribe(ContractHappenedEvent, record)

    for value in range(3):
        await nodes[0].publish(ContractHappenedEvent(value=value))
    # Nobody listens to this one: publishing it is no error and reaches no handler.
    await nodes[1].publish(ContractUnheardEvent())

    await eventually(
        lambda: all(len(values) == 3 for values in seen.values()), what="3 events on 3 nodes"
    )
    await asyncio.sleep(0.1)  # room for a duplicate to show up
    assert all(sorted(values) == [0, 1, 2] for values in seen.values()), seen
    assert all(bus.stats.events_received == 3 for bus in nodes)


async def test_a_failing_subscriber_does_not_stop_the_others(cluster: Cluster) -> None:
    a, b = await cluster.start(2)
    got: asyncio.Queue[int] = asyncio.Queue()

    async def broken(event: ContractHappenedEvent) -> None:
        raise RuntimeError("subscriber bug")

    async def record(event: ContractHappenedEvent) -> None:
        got.put_nowait(event.value)

    await b.subscribe(ContractHappenedEvent, broken)
    await b.subscribe(ContractHappenedEvent, record)

    await a.publish(ContractHappenedEvent(value=1))
    await a.publish(ContractHappenedEvent(value=2))

    assert await asyncio.wait_for(got.get(), 10) == 1
    assert await asyncio.wait_for(got.get(), 10) == 2
