"""The stress driver's fast path: hosts and VMs whose rows are copies of a template's.

At 100,000 hosts and 1,000,000 VMs the API path would take hours of a 2-core machine, so
scale runs may add hosts and VMs here instead, but only as the API would have: the rows
are copies of those the API wrote for a template host (AddKVMHost) or a template VM
(CreateVmInstance), found by ``simulator.stress.clone``; each copy gets its own uuids,
name, management IP and agent token (hosts), or its own uuids, name, NIC IP and MAC and
sequence number on a host with room (VMs); host and primary-storage capacity is taken
as the API takes it. The simulator adopts the new machines and VMs first (``POST
/simulator/adopt``), so the node's pings and state syncs find what they would find after
the API path. ``tests/e2e/test_stress_fastpath.py`` proves the rows equal, table by
table, to those of hosts and VMs made through the API.

The node may run meanwhile: nothing it keeps in memory describes hosts or VMs it did not
make (pings and syncs read the database every round), and capacity is updated in SQL.
No API call may be creating VMs at the same time: a placement could count capacity the
copies are about to take.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy import MetaData, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from simulator.stress.clone import (
    Identity,
    TemplateRows,
    copies,
    insert_rows,
    new_uuids,
    reflect,
    template_rows,
)

# VMs (or hosts) per transaction: SQLite's one writer must not be held for long while
# the node runs.
CHUNK = 2000


@dataclass(frozen=True, slots=True)
class NewHost:
    name: str
    management_ip: str


def _engine(db_url: str) -> AsyncEngine:
    engine = create_async_engine(db_url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _big_cache(dbapi_conn: Any, _record: Any) -> None:
            # Copies insert into indexes keyed by random uuids: with SQLite's 2 MB default
            # page cache nearly every insert misses at a million rows.
            dbapi_conn.execute("PRAGMA cache_size = -524288")  # 512 MiB

    return engine


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


async def _adopt(http: aiohttp.ClientSession, simulator_url: str, body: dict[str, Any]) -> None:
    async with http.post(f"{simulator_url}/simulator/adopt", json=body) as resp:
        if resp.status != 200:
            raise RuntimeError(f"the simulator refused the adoption: {await resp.text()}")


async def clone_hosts(
    db_url: str,
    simulator_url: str,
    template_host_uuid: str,
    hosts: Sequence[NewHost],
    progress: Callable[[int], None] = lambda n: None,
) -> list[str]:
    """Copies of the template host (which must have no VMs); answers their uuids."""
    engine = _engine(db_url)
    made: list[str] = []
    try:
        async with engine.connect() as conn:
            metadata = await reflect(conn)
            template = await template_rows(conn, metadata, template_host_uuid)
            if template.rows.get("VmInstanceVO"):
                raise RuntimeError("the template host runs VMs: copy hosts before VMs")
            name = template.one("HostVO", "name")
            ip = template.one("HostVO", "management_ip")
            token = template.one("KVMHostVO", "agent_token")
        async with aiohttp.ClientSession() as http:
            for start in range(0, len(hosts), CHUNK):
                chunk = hosts[start : start + CHUNK]
                identities = []
                for uuids, host in zip(new_uuids(template, len(chunk)), chunk, strict=True):
                    identities.append(
                        Identity(
                            uuids=uuids,
                            strings={
                                name: host.name,
                                ip: host.management_ip,
                                token: secrets.token_urlsafe(32),
                            },
                        )
                    )
                adopted = [
                    {
                        "address": host.management_ip,
                        "hostUuid": identity.uuids[template_host_uuid],
                        "token": identity.strings[token],
                    }
                    for host, identity in zip(chunk, identities, strict=True)
                ]
                await _adopt(http, simulator_url, {"like": ip, "hosts": adopted})
                async with engine.begin() as conn:
                    await insert_rows(conn, metadata, copies(template, identities, _now()))
                made.extend(identity.uuids[template_host_uuid] for identity in identities)
                progress(len(made))
    finally:
        await engine.dispose()
    return made


@dataclass
class _VmTemplate:
    rows: TemplateRows
    uuid: str
    host_uuid: str
    name: str
    internal_id: int
    ip: str
    mac: str
    cpu_num: int
    memory: int
    root_size: int
    root_path: str
    nfs_url: str
    sim_name: str  # the name the simulator knows the template VM by
    ip_range: dict[str, Any]


async def _vm_template(
    conn: AsyncConnection, metadata: MetaData, vm_uuid: str, sim_name: str
) -> _VmTemplate:
    rows = await template_rows(conn, metadata, vm_uuid)
    if len(rows.rows.get("VmNicVO", [])) != 1 or len(rows.rows.get("VolumeVO", [])) != 1:
        raise RuntimeError("the template VM must have one NIC and only its root volume")
    if rows.one("VmInstanceVO", "state") != "Running":
        raise RuntimeError("the template VM must be Running")
    ps = metadata.tables["PrimaryStorageVO"]
    ranges = metadata.tables["IpRangeVO"]
    ps_uuid = rows.one("VolumeVO", "primary_storage_uuid")
    ps_row = (await conn.execute(select(ps).where(ps.c.uuid == ps_uuid))).mappings().one()
    if ps_row["type"] != "NFS":
        raise RuntimeError("the fast path copies VMs on NFS primary storage only")
    range_uuid = rows.one("UsedIpVO", "ip_range_uuid")
    ip_range = (await conn.execute(select(ranges).where(ranges.c.uuid == range_uuid))).mappings()
    return _VmTemplate(
        rows=rows,
        uuid=vm_uuid,
        host_uuid=rows.one("VmInstanceVO", "host_uuid"),
        name=rows.one("VmInstanceVO", "name"),
        internal_id=rows.one("VmInstanceVO", "internal_id"),
        ip=rows.one("VmNicVO", "ip"),
        mac=rows.one("VmNicVO", "mac"),
        cpu_num=rows.one("VmInstanceVO", "cpu_num"),
        memory=rows.one("VmInstanceVO", "memory_size"),
        root_size=rows.one("VolumeVO", "size"),
        root_path=rows.one("VolumeVO", "install_path"),
        nfs_url=ps_row["url"],
        sim_name=sim_name,
        ip_range=dict(ip_range.one()),
    )


async def _free_ips(
    conn: AsyncConnection, metadata: MetaData, t: _VmTemplate, count: int
) -> list[str]:
    used_ips = metadata.tables["UsedIpVO"]
    taken = set(
        (
            await conn.execute(
                select(used_ips.c.ip).where(
                    used_ips.c.l3_network_uuid == t.ip_range["l3_network_uuid"]
                )
            )
        ).scalars()
    )
    taken.add(t.ip_range["gateway"])
    low = int(ipaddress.IPv4Address(t.ip_range["start_ip"]))
    high = int(ipaddress.IPv4Address(t.ip_range["end_ip"]))
    free: list[str] = []
    for value in range(low, high + 1):
        ip = str(ipaddress.IPv4Address(value))
        if ip not in taken:
            free.append(ip)
            if len(free) == count:
                return free
    raise RuntimeError(f"the template's IP range has {len(free)} free addresses, not {count}")


async def _free_macs(conn: AsyncConnection, metadata: MetaData, count: int) -> list[str]:
    nics = metadata.tables["VmNicVO"]
    taken = set((await conn.execute(select(nics.c.mac))).scalars())
    macs: list[str] = []
    while len(macs) < count:
        # Locally administered unicast, as the node makes them (fa:...); placement only.
        mac = "fa:" + ":".join(f"{random.getrandbits(8):02x}" for _ in range(5))
        if mac not in taken:
            taken.add(mac)
            macs.append(mac)
    return macs


async def clone_vms(
    db_url: str,
    simulator_url: str,
    template_vm_uuid: str,
    template_sim_name: str,
    placements: Sequence[tuple[str, str]],
    name_of: Callable[[int], str],
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Copies of the template VM, one per ``(host uuid, host management IP)`` in
    ``placements`` (the caller spreads them; each host must have room); answers how many
    were made."""
    engine = _engine(db_url)
    made = 0
    try:
        async with engine.connect() as conn:
            metadata = await reflect(conn)
            t = await _vm_template(conn, metadata, template_vm_uuid, template_sim_name)
            ips = await _free_ips(conn, metadata, t, len(placements))
            macs = await _free_macs(conn, metadata, len(placements))
            sequence = metadata.tables["VmInstanceSequenceNumberVO"]
            next_id = int((await conn.execute(select(func.max(sequence.c.id)))).scalar() or 0) + 1
        tmpl_long = int(ipaddress.IPv4Address(t.ip))
        async with aiohttp.ClientSession() as http:
            for start in range(0, len(placements), CHUNK):
                chunk = placements[start : start + CHUNK]
                identities: list[Identity] = []
                adopted: list[dict[str, Any]] = []
                for offset, (uuids, (host_uuid, host_ip)) in enumerate(
                    zip(new_uuids(t.rows, len(chunk)), chunk, strict=True)
                ):
                    i = start + offset
                    internal_id = next_id + i
                    name = name_of(i)
                    identity = Identity(
                        uuids={**uuids, t.host_uuid: host_uuid},
                        strings={
                            t.name: name,
                            t.ip: ips[i],
                            t.mac: macs[i],
                            f"vnic{t.internal_id}.": f"vnic{internal_id}.",
                        },
                        ints={
                            "internal_id": {t.internal_id: internal_id},
                            "id": {t.internal_id: internal_id},
                            "ip_in_long": {tmpl_long: int(ipaddress.IPv4Address(ips[i]))},
                        },
                    )
                    identities.append(identity)
                    nic_uuid = identity.uuids[t.rows.one("VmNicVO", "uuid")]
                    adopted.append(
                        {
                            "address": host_ip,
                            "uuid": identity.uuids[t.uuid],
                            "name": identity.rewrite("name", t.sim_name, _now()),
                            "cpuNum": t.cpu_num,
                            "memorySize": t.memory,
                            "nics": [nic_uuid],
                            "nfsUrl": t.nfs_url,
                            "rootPath": identity.rewrite("install_path", t.root_path, _now()),
                            "rootSize": t.root_size,
                        }
                    )
                await _adopt(http, simulator_url, {"vms": adopted})
                async with engine.begin() as conn:
                    await insert_rows(conn, metadata, copies(t.rows, identities, _now()))
                    await _take_capacity(conn, metadata, t, chunk)
                made += len(chunk)
                progress(made)
    finally:
        await engine.dispose()
    return made


async def _take_capacity(
    conn: AsyncConnection, metadata: MetaData, t: _VmTemplate, chunk: Sequence[tuple[str, str]]
) -> None:
    """What each VM's placement and root volume take, as the API takes it: vCPUs and
    memory on its host, the root volume's size on the primary storage."""
    hosts = metadata.tables["HostVO"]
    per_host: dict[str, int] = {}
    for host_uuid, _ip in chunk:
        per_host[host_uuid] = per_host.get(host_uuid, 0) + 1
    for host_uuid, n in per_host.items():
        await conn.execute(
            update(hosts)
            .where(hosts.c.uuid == host_uuid)
            .values(
                available_cpu_capacity=hosts.c.available_cpu_capacity - n * t.cpu_num,
                available_memory_capacity=hosts.c.available_memory_capacity - n * t.memory,
            )
        )
    ps = metadata.tables["PrimaryStorageVO"]
    ps_uuid = t.rows.one("VolumeVO", "primary_storage_uuid")
    await conn.execute(
        update(ps)
        .where(ps.c.uuid == ps_uuid)
        .values(available_capacity=ps.c.available_capacity - len(chunk) * t.root_size)
    )


async def spread(db_url: str, count: int, cpu_num: int, memory: int) -> list[tuple[str, str]]:
    """``count`` placements ``(host uuid, management IP)`` over the Enabled and Connected
    hosts, one host after another while each has room for one more VM of that size, as
    evenly as their free capacity allows."""
    engine = _engine(db_url)
    try:
        async with engine.connect() as conn:
            metadata = MetaData()
            await conn.run_sync(lambda c: metadata.reflect(c, only=["HostVO"]))
            hosts = metadata.tables["HostVO"]
            rows = (
                await conn.execute(
                    select(
                        hosts.c.uuid,
                        hosts.c.management_ip,
                        hosts.c.available_cpu_capacity,
                        hosts.c.available_memory_capacity,
                    )
                    .where(hosts.c.state == "Enabled", hosts.c.status == "Connected")
                    .order_by(hosts.c.uuid)
                )
            ).all()
    finally:
        await engine.dispose()
    room = {
        r.uuid: min(r.available_cpu_capacity // cpu_num, r.available_memory_capacity // memory)
        for r in rows
    }
    placements: list[tuple[str, str]] = []
    while len(placements) < count:
        before = len(placements)
        for r in rows:
            if room[r.uuid] > 0 and len(placements) < count:
                room[r.uuid] -= 1
                placements.append((r.uuid, r.management_ip))
        if len(placements) == before:
            raise RuntimeError(f"the hosts have room for {before} VMs of that size, not {count}")
    return placements
