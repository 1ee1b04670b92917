"""The stress driver's fast path writes the rows the API writes: hosts and VMs made both
ways in one data center are compared table by table, after replacing what each resource
must have of its own (uuids, names, addresses, MACs, tokens, sequence numbers, dates) by
placeholders; capacity adds up; and the node drives the copies like any other (pings keep
the hosts Connected, a copied VM stops, starts and is destroyed over REST)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections import Counter
from typing import Any

import aiohttp
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import create_async_engine

from simulator import Simulator
from simulator.stress.clone import reflect, template_rows
from simulator.stress.datacenter import add_hosts, build_base, host_ip, vm_body
from simulator.stress.fastpath import NewHost, clone_hosts, clone_vms
from simulator.stress.rest import ApiClient as StressClient
from simulator.stress.rest import Driver
from tests.e2e.conftest import ADMIN_PASSWORD
from tests.support.api_client import ApiClient
from tests.support.datacenter import set_global_config, wait_for
from zstackpy.node.node import ManagementNode

PREFIX = "fp"
UUID = re.compile(r"[0-9a-f]{32}")
MAC = re.compile(r"fa(:[0-9a-f]{2}){5}")
IP = re.compile(r"10\.(64|128)\.\d+\.\d+")
VNIC = re.compile(r"vnic\d+\.")  # a NIC's name holds its VM's sequence number


def _shape(value: Any, names: list[str], own: set[str]) -> Any:
    """A row's value with what is the resource's own replaced by placeholders."""
    if isinstance(value, dt.datetime):
        return "<date>"
    if not isinstance(value, str):
        return value
    for name in names:
        value = value.replace(name, "<name>")
    value = UUID.sub(lambda m: "<own>" if m.group(0) in own else "<ref>", value)
    value = MAC.sub("<mac>", value)
    value = VNIC.sub("vnic<n>.", value)
    return IP.sub("<ip>", value)


async def _rows_of(db_url: str, root_uuid: str) -> Counter[tuple[Any, ...]]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            metadata = await reflect(conn)
            rows = await template_rows(conn, metadata, root_uuid)
    finally:
        await engine.dispose()
    names = sorted(
        {
            r["name"]
            for table in rows.rows.values()
            for r in table
            if isinstance(r.get("name"), str)
        },
        key=len,
        reverse=True,
    )
    shapes: Counter[tuple[Any, ...]] = Counter()
    for table, table_rows in rows.rows.items():
        for row in table_rows:
            values = {
                column: _shape(value, names, rows.uuids)
                for column, value in row.items()
                # Per-resource numbers and secrets: checked for uniqueness below instead.
                if column not in ("internal_id", "ip_in_long", "agent_token", "id")
                and not column.endswith("capacity")
            }
            shapes[(table, tuple(sorted(values.items())))] += 1
    return shapes


async def _column(db_url: str, table: str, column: str) -> list[Any]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            metadata = MetaData()
            await conn.run_sync(metadata.reflect)
            t = metadata.tables[table]
            return list((await conn.execute(select(t.c[column]))).scalars())
    finally:
        await engine.dispose()


async def test_fast_path_rows_equal_the_apis_and_the_node_drives_them(
    node: ManagementNode, admin: ApiClient, sim: Simulator
) -> None:
    db_url = node.settings.database_url
    assert node.http is not None
    await set_global_config(admin, "host", "ping.interval", 0.5)
    async with aiohttp.ClientSession() as http:
        client = StressClient(f"http://127.0.0.1:{node.http.port}", http)
        await client.login("admin", ADMIN_PASSWORD)
        driver = Driver([client], 20)
        try:
            dc = await build_base(driver, client, PREFIX, 100)
            added = await add_hosts(
                driver, dc["cluster"]["uuid"], range(3), prefix=PREFIX, parallel=3
            )
            api_hosts = [a.body["inventory"]["uuid"] for a in added]
            assert all(a.status == 200 for a in added), [a.body for a in added]

            copied_hosts = await clone_hosts(
                db_url,
                sim.base_url,
                api_hosts[0],
                [NewHost(f"{PREFIX}-host-{i}", host_ip(i)) for i in range(3, 6)],
            )
            # The same rows, table by table, for a host of each path (before any VM).
            api_host_rows = await _rows_of(db_url, api_hosts[1])
            for uuid in copied_hosts:
                assert await _rows_of(db_url, uuid) == api_host_rows
            api_vms = []
            for i in range(3):
                answer = await driver.job(
                    client, "POST", "/vm-instances", vm_body(dc, f"{PREFIX}-vm-{i}")
                )
                assert answer.status == 200, answer.body
                api_vms.append(answer.body["inventory"])
        finally:
            await driver.close()

    template = api_vms[0]
    template_host = await admin.request("GET", f"/hosts/{template['hostUuid']}")
    template_ip = template_host.body["inventories"][0]["managementIp"]
    template_on_host = sim.machine(template_ip).vm(template["uuid"])
    assert template_on_host is not None
    placements = [(copied_hosts[i % 3], host_ip(3 + i % 3)) for i in range(6)]
    made = await clone_vms(
        db_url,
        sim.base_url,
        template["uuid"],
        template_on_host.name,
        placements,
        lambda i: f"{PREFIX}-copy-{i}",
    )
    assert made == 6
    api_vm_rows = await _rows_of(db_url, api_vms[1]["uuid"])
    listed = await admin.query("/vm-instances", f"name~=%{PREFIX}-copy-%")
    copies = listed.body["inventories"]
    assert len(copies) == 6
    for vm in copies:
        assert await _rows_of(db_url, vm["uuid"]) == api_vm_rows
        assert vm["state"] == "Running"

    # What each must have of its own is its own.
    for table, column in (
        ("VmNicVO", "ip"), ("VmNicVO", "mac"), ("VmInstanceVO", "internal_id"),
        ("UsedIpVO", "ip_in_long"), ("KVMHostVO", "agent_token"), ("HostVO", "management_ip"),
        ("VolumeVO", "install_path"),
    ):  # fmt: skip
        values = await _column(db_url, table, column)
        assert len(values) == len(set(values)), (table, column)

    # Capacity: every host's free memory is its total minus its VMs'.
    hosts = (await admin.request("GET", "/hosts")).body["inventories"]
    vms = (await admin.request("GET", "/vm-instances")).body["inventories"]
    for host in hosts:
        on_host = [vm for vm in vms if vm["hostUuid"] == host["uuid"]]
        assert host["availableMemoryCapacity"] == host["totalMemoryCapacity"] - sum(
            vm["memorySize"] for vm in on_host
        )
        assert host["availableCpuCapacity"] == host["totalCpuCapacity"] - sum(
            vm["cpuNum"] for vm in on_host
        )
    ps = (await admin.request("GET", f"/primary-storage/{dc['nfs']['uuid']}")).body["inventories"][
        0
    ]
    volumes = (await admin.request("GET", "/volumes")).body["inventories"]
    image_cache = dc["image"]["size"]
    assert ps["availableCapacity"] == ps["totalCapacity"] - image_cache - sum(
        v["size"] for v in volumes
    )

    # The node drives the copies: pings keep the hosts Connected (the agents answer as
    # the hosts the rows say), a copied VM stops, starts and is destroyed.
    await asyncio.sleep(1.5)
    for uuid in copied_hosts:
        host = (await admin.request("GET", f"/hosts/{uuid}")).body["inventories"][0]
        assert host["status"] == "Connected"
        assert "/host/ping" in (sim.machine(host["managementIp"]).commands or {}), host
    vm = copies[0]
    for action in ("stopVmInstance", "startVmInstance"):
        acted = await admin.action(f"/vm-instances/{vm['uuid']}/actions", action, {})
        assert acted.status == 200, acted.body
    destroyed = await admin.delete(f"/vm-instances/{vm['uuid']}")
    assert destroyed.status == 200, destroyed.body

    async def gone_from_host() -> bool:
        machine = sim.machine(next(h["managementIp"] for h in hosts if h["uuid"] == vm["hostUuid"]))
        return machine.vm(vm["uuid"]) is None

    await wait_for(gone_from_host, 10)
