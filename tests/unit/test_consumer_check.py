"""/health's view of the bus consumers: one check at a time, reused while fresh on the same
connection, and a check slower than one request's wait still serves the next request."""

from __future__ import annotations

import asyncio

from zstackpy.node.consumer_check import FRESH_S, ConsumerCheck


class Broker:
    """Answers the consumer query after ``delay`` s, counting the queries."""

    def __init__(self, delay: float, missing: list[str] | None = None) -> None:
        self.delay = delay
        self.missing = missing or []
        self.queries = 0
        self.generation = 0

    async def missing_consumers(self) -> list[str]:
        self.queries += 1
        await asyncio.sleep(self.delay)
        return list(self.missing)


async def test_a_check_slower_than_the_wait_answers_the_next_request() -> None:
    broker = Broker(delay=0.3)
    check = ConsumerCheck(broker.missing_consumers, lambda: broker.generation)

    first = await asyncio.gather(*(check.view(0.05) for _ in range(5)))
    assert first == [("unknown: the check takes long", "bus consumers could not be checked")] * 5
    await asyncio.sleep(0.4)
    assert await check.view(0.05) == ("all present", None)
    assert broker.queries == 1  # five requests, one check; the answer reused


async def test_a_reconnect_makes_the_last_answer_unusable() -> None:
    broker = Broker(delay=0.0, missing=["zstack.message.vmInstance.x"])
    check = ConsumerCheck(broker.missing_consumers, lambda: broker.generation)
    assert await check.view(1) == (
        "missing on ['zstack.message.vmInstance.x']",
        "bus consumers missing",
    )
    broker.missing = []
    assert (await check.view(1))[1] == "bus consumers missing"  # fresh: reused
    broker.generation += 1
    assert await check.view(1) == ("all present", None)
    assert broker.queries == 2


async def test_an_old_answer_of_the_same_connection_is_shown_with_its_age() -> None:
    broker = Broker(delay=0.0)
    check = ConsumerCheck(broker.missing_consumers, lambda: broker.generation)
    assert await check.view(1) == ("all present", None)
    broker.delay = 0.5
    await asyncio.sleep(FRESH_S + 0.1)
    shown, reason = await check.view(0.05)  # at once: no wait for the new check
    assert reason is None
    assert shown.startswith("all present (checked ")
    await asyncio.sleep(0.6)  # the new check, started in the background, has answered
    assert await check.view(0.05) == ("all present", None)
    assert broker.queries == 2


async def test_a_primed_check_answers_the_first_request() -> None:
    broker = Broker(delay=0.3)
    check = ConsumerCheck(broker.missing_consumers, lambda: broker.generation)
    check.prime()  # as the node does once it is ready
    await asyncio.sleep(0.4)
    assert await check.view(0.05) == ("all present", None)
    assert broker.queries == 1
