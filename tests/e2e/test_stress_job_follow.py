"""How the stress driver and the benchmarks follow jobs (simulator/stress): ends come from
the node's event stream while the safety-net polls are too slow to find them, and when
the stream is gone the driver polls at once, so that no job is waited on for the net's
interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from simulator.stress.job_events import POLL_PACE, JobEvents
from simulator.stress.rest import ApiClient, Driver
from tests.e2e.conftest import ADMIN_PASSWORD
from zstackpy.api.http import EVENT_HUB
from zstackpy.node.node import ManagementNode

# So slow that a job answered within a test's timeout was not found by a poll.
NEVER = (3600.0, 1.0)


@pytest.fixture
async def client(node: ManagementNode, http: aiohttp.ClientSession) -> ApiClient:
    assert node.http is not None
    api = ApiClient(f"http://127.0.0.1:{node.http.port}", http)
    await api.login("admin", ADMIN_PASSWORD)
    return api


@pytest.fixture
async def driver(client: ApiClient) -> AsyncIterator[Driver]:
    followed = Driver([client], 10, *NEVER)
    yield followed
    await followed.close()


async def create_zone(driver: Driver, client: ApiClient, name: str) -> dict[str, object]:
    answer = await asyncio.wait_for(
        driver.job(client, "POST", "/zones", {"params": {"name": name}}), 10
    )
    assert answer.status == 200, answer.body
    inventory: dict[str, object] = answer.body["inventory"]
    return inventory


async def test_job_ends_come_from_the_stream_not_the_polls(
    driver: Driver, client: ApiClient
) -> None:
    events = JobEvents(driver.job_completed)
    await events.open(client)
    try:
        zones = await asyncio.gather(*(create_zone(driver, client, f"z{n}") for n in range(5)))
    finally:
        await events.close()
    assert sorted(str(z["name"]) for z in zones) == [f"z{n}" for n in range(5)]
    assert events.events >= 5
    assert driver.polls == 5  # one fetch per job, none of the net's polls


async def test_a_lost_stream_makes_the_driver_poll_at_once(
    node: ManagementNode, driver: Driver, client: ApiClient
) -> None:
    lost = asyncio.Event()

    def on_lost() -> None:
        driver.poll_now(*POLL_PACE)
        lost.set()

    events = JobEvents(lambda _uuid: None, on_lost)  # ends read but not acted on
    await events.open(client)
    slow = asyncio.create_task(create_zone(driver, client, "before"))
    await asyncio.sleep(0.5)
    assert not slow.done()  # followed by the net's polls only, an hour apart
    assert node.http is not None
    await node.http.app[EVENT_HUB].close()  # the node ends every stream
    await asyncio.wait_for(lost.wait(), 5)
    try:
        assert (await asyncio.wait_for(slow, 5))["name"] == "before"
        assert (await create_zone(driver, client, "after"))["name"] == "after"
    finally:
        await events.close()
