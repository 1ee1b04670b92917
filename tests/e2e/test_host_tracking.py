"""Host tracking end to end: hosts go Disconnected when their agent stops answering pings
and come back by themselves, ReconnectHost, agent reports and their tokens, and several
nodes sharing the pings (takeover, start-up reconnects)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import update

from simulator import Simulator
from tests.e2e.conftest import ADMIN_PASSWORD, Start, login_admin
from tests.support.api_client import ApiClient
from tests.support.datacenter import (
    add_cluster,
    add_datacenter,
    add_kvm_host,
    add_zone,
    get_host,
    set_global_config,
    wait_for,
    wait_host_status,
)
from zstackpy.core.agent import SEND_COMMAND_PATH
from zstackpy.core.db import Database
from zstackpy.core.ids import new_uuid
from zstackpy.node.node import ManagementNode
from zstackpy.services.host.messages import HostStatusChangedEvent, VmStateChangedOnHostEvent
from zstackpy.services.host.models import HostVO

GIB = 1 << 30


async def _fast_pings(admin: ApiClient) -> None:
    """Ping every 0.1 s; Disconnected after 2 failed pings."""
    await set_global_config(admin, "host", "ping.timeout", 0.5)
    await set_global_config(admin, "host", "ping.maxFailure", 2)
    await set_global_config(admin, "host", "ping.interval", 0.1)


# ----- ping tracking and reconnects ---------------------------------------------------------


async def test_host_disconnects_and_comes_back_by_itself(
    admin: ApiClient, sim: Simulator, node: ManagementNode
) -> None:
    _, _, [host, other] = await add_datacenter(admin, "ping", ["10.8.0.1", "10.8.0.2"])
    changes: list[HostStatusChangedEvent] = []

    async def record(event: HostStatusChangedEvent) -> None:
        changes.append(event)

    await node.context.bus.subscribe(HostStatusChangedEvent, record)
    await _fast_pings(admin)
    loop = asyncio.get_running_loop()
    killed = loop.time()
    await sim.set_alive("10.8.0.1", False)
    await wait_host_status(admin, host["uuid"], "Disconnected", timeout=3)
    # interval 0.1 x maxFailure 2, plus slack for the loop and a slow CI machine
    assert loop.time() - killed < 2.5
    assert (await get_host(admin, other["uuid"]))["status"] == "Connected"

    await sim.set_alive("10.8.0.1", True)
    await wait_host_status(admin, host["uuid"], "Connected", timeout=3)
    seen = [(e.old_status, e.new_status) for e in changes if e.host_uuid == host["uuid"]]
    assert ("Connected", "Disconnected") in seen
    assert seen[-1][1] == "Connected"


async def test_no_auto_reconnect_when_turned_off(admin: ApiClient, sim: Simulator) -> None:
    _, _, [host] = await add_datacenter(admin, "noauto", ["10.9.0.1"])
    await set_global_config(admin, "host", "connection.autoReconnectOnError", "false")
    await _fast_pings(admin)
    await sim.set_alive("10.9.0.1", False)
    await wait_host_status(admin, host["uuid"], "Disconnected", timeout=3)
    await sim.set_alive("10.9.0.1", True)
    await asyncio.sleep(0.5)
    assert (await get_host(admin, host["uuid"]))["status"] == "Disconnected"
    # The operator brings it back.
    answer = await admin.action(f"/hosts/{host['uuid']}/actions", "reconnectHost", {})
    assert answer.status == 200, answer.body
    assert answer.body["inventory"]["status"] == "Connected"


async def test_reconnect_host(admin: ApiClient, sim: Simulator) -> None:
    _, _, [host] = await add_datacenter(admin, "rc", ["10.10.0.1"])
    path = f"/hosts/{host['uuid']}/actions"
    sim.declare("10.10.0.1", memory_size=64 * GIB)  # the machine lost half its memory
    done = await admin.action(path, "reconnectHost", {})
    assert done.status == 200, done.body
    assert done.body["inventory"]["status"] == "Connected"
    assert done.body["inventory"]["totalMemoryCapacity"] == 63 * GIB

    await sim.set_alive("10.10.0.1", False)
    failed = await admin.action(path, "reconnectHost", {})
    assert failed.error["code"] == "AGENT.1001"
    assert (await get_host(admin, host["uuid"]))["status"] == "Disconnected"
    await sim.set_alive("10.10.0.1", True)
    again = await admin.action(path, "reconnectHost", {})
    assert again.body["inventory"]["status"] == "Connected"


# ----- agent reports --------------------------------------------------------------------


async def test_agent_reports_need_the_hosts_token(
    admin: ApiClient, sim: Simulator, node: ManagementNode, http: aiohttp.ClientSession
) -> None:
    _, _, [host] = await add_datacenter(admin, "rep", ["10.14.0.1"])
    states: list[VmStateChangedOnHostEvent] = []

    async def record(event: VmStateChangedOnHostEvent) -> None:
        states.append(event)

    await node.context.bus.subscribe(VmStateChangedOnHostEvent, record)
    assert node.http is not None
    url = f"http://127.0.0.1:{node.http.port}{SEND_COMMAND_PATH}"
    body = {"hostUuid": host["uuid"], "vmUuid": "cd" * 16, "vmState": "Shutdown"}
    for headers in (
        {"commandpath": "/kvm/reportvmstate"},
        {"commandpath": "/kvm/reportvmstate", "Authorization": "Bearer not-the-token"},
        {"commandpath": "/kvm/reconnectme", "Authorization": "Bearer not-the-token"},
    ):
        async with http.post(url, json=body, headers=headers) as resp:
            answer = await resp.json()
            assert resp.status >= 400
            assert answer["error"]["code"] == "HOST.1007"
    assert states == []

    # The agent itself, with its token, is heard.
    await sim.report("10.14.0.1", "/kvm/reportvmstate", body)

    async def reported() -> bool:
        return bool(states)

    await wait_for(reported)
    assert (states[0].host_uuid, states[0].vm_uuid, states[0].state) == (
        host["uuid"],
        "cd" * 16,
        "Stopped",
    )
    await sim.report("10.14.0.1", "/kvm/reconnectme", {"hostUuid": host["uuid"]})
    await wait_host_status(admin, host["uuid"], "Connected")


async def test_a_host_reporting_its_shutdown_is_disconnected_at_once(
    admin: ApiClient, sim: Simulator
) -> None:
    # Pings are an hour apart: only the report can disconnect the host within the test.
    await set_global_config(admin, "host", "ping.interval", 3600)
    _, _, [host] = await add_datacenter(admin, "stop", ["10.14.1.1"])
    await sim.report(
        "10.14.1.1", "/kvm/reporthoststop", {"hostUuid": host["uuid"], "reason": "poweroff"}
    )
    await wait_host_status(admin, host["uuid"], "Disconnected")
    # ReconnectHost brings it back (the machine still answers: it only said it would stop).
    answer = await admin.action(f"/hosts/{host['uuid']}/actions", "reconnectHost", {})
    assert answer.status == 200, answer.body
    assert answer.body["inventory"]["status"] == "Connected"


# ----- several nodes: ownership, takeover, start-up -------------------------------------


@pytest.fixture
async def shared_sim() -> AsyncIterator[Simulator]:
    """One simulator for several nodes, as in cluster mode; it outlives node restarts."""
    async with Simulator() as simulator:
        yield simulator


async def test_a_surviving_node_takes_over_the_pings(
    start_node: Start, shared_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    options = {"simulator_url": shared_sim.base_url, "admin_password": SecretStr(ADMIN_PASSWORD)}
    first = await start_node(**options)
    second = await start_node(**options)
    admin = await login_admin(first, http)

    async def both_joined() -> bool:
        return all(n.context.ring.nodes == {first.uuid, second.uuid} for n in (first, second))

    await wait_for(both_joined)
    # Host uuids chosen so that each node owns four: the takeover must move real work.
    ring = first.context.ring
    by_owner: dict[str, list[str]] = {first.uuid: [], second.uuid: []}
    while min(len(v) for v in by_owner.values()) < 4:
        candidate = new_uuid()
        owned = by_owner[ring.owner(candidate)]
        if len(owned) < 4:
            owned.append(candidate)
    ips = [f"10.16.0.{i}" for i in range(1, 9)]
    zone = await add_zone(admin, "ha-zone")
    cluster = await add_cluster(admin, zone["uuid"], "ha-cluster")
    hosts = [
        await add_kvm_host(admin, cluster["uuid"], ip, resourceUuid=uuid)
        for ip, uuid in zip(ips, by_owner[first.uuid] + by_owner[second.uuid], strict=True)
    ]

    await second.stop()
    await _fast_pings(admin)
    for ip in ips:
        await shared_sim.set_alive(ip, False)
    for host in hosts:  # including the hosts the stopped node pinged
        await wait_host_status(admin, host["uuid"], "Disconnected", timeout=4)
    for ip in ips:
        await shared_sim.set_alive(ip, True)
    for host in hosts:
        await wait_host_status(admin, host["uuid"], "Connected", timeout=4)


async def test_hosts_left_connecting_are_reconnected_at_start(
    start_node: Start, shared_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    options = {"simulator_url": shared_sim.base_url, "admin_password": SecretStr(ADMIN_PASSWORD)}
    first = await start_node(**options)
    admin = await login_admin(first, http)
    _, _, [host] = await add_datacenter(admin, "boot", ["10.17.0.1"])
    await first.stop()
    # A node died half-way through connecting the host.
    db = Database(first.settings.database_url)
    try:
        async with db.session() as session, session.begin():
            await session.execute(
                update(HostVO).where(HostVO.uuid == host["uuid"]).values(status="Connecting")
            )
    finally:
        await db.close()

    second = await start_node(**options)
    await wait_host_status(await login_admin(second, http), host["uuid"], "Connected")


async def test_a_round_spreads_its_pings_over_the_interval(
    admin: ApiClient, sim: Simulator, node: ManagementNode
) -> None:
    """Ten hosts, a 3 s interval: their pings start over ~2.4 s (80% of it), not at once."""
    ips = [f"10.19.0.{i}" for i in range(1, 11)]
    await set_global_config(admin, "host", "ping.interval", 3600)
    await add_datacenter(admin, "spread", ips)
    before = {ip: (sim.machine(ip).commands or {}).get("/host/ping", 0) for ip in ips}
    loop = asyncio.get_running_loop()
    started = loop.time()
    await set_global_config(admin, "host", "ping.interval", 3)  # wakes the tracker
    first_ping: dict[str, float] = {}
    while len(first_ping) < len(ips) and loop.time() - started < 6:
        for ip in ips:
            if (
                ip not in first_ping
                and (sim.machine(ip).commands or {}).get("/host/ping", 0) > before[ip]
            ):
                first_ping[ip] = loop.time() - started
        await asyncio.sleep(0.02)
    assert len(first_ping) == len(ips)
    # A burst would ping all ten within a few loop turns; spread, the last starts ~2.2 s
    # after the first (9 slots of 0.24 s).
    assert max(first_ping.values()) - min(first_ping.values()) > 1.5, first_ping
