"""IP allocations per second through the bus, on one embedded node (SQLite by default).

* ``serial``: one caller allocating one address at a time: each is a batch of one (a count,
  a window scan, an insert, a commit, a read back).
* ``burst_<n>``: n callers at once on one L3: the L3's queue serves them in few batches.
* ``wrap``: one caller on a /22 filled up to its last 64 addresses, after releasing 64
  scattered ones: the cursor wraps and the scan walks a full range window by window.
* ``release``: release then allocate again, one at a time.

Prints one JSON line. Usage:
``python benchmarks/bench_ipam.py [--db-url URL] [--seconds S] [--burst N ...]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from zstackpy.api.messages import APICreateMessage, APIMessage, APIReply, AuthContext
from zstackpy.core.bus.inproc import InProcBroker
from zstackpy.core.db import upgrade
from zstackpy.core.ids import new_uuid
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode
from zstackpy.services.network.inventories import UsedIpInventory
from zstackpy.services.network.l2.api import APICreateL2NoVlanNetworkMsg, L2NetworkEvent
from zstackpy.services.network.l3.api import APICreateL3NetworkMsg, L3NetworkEvent
from zstackpy.services.network.l3.range_api import APIAddIpRangeByNetworkCidrMsg
from zstackpy.services.network.messages import AllocateIpMsg, AllocateIpReply, ReleaseIpMsg
from zstackpy.services.zone.messages import APICreateZoneMsg, ZoneEvent

ADMIN = AuthContext(session_uuid="0" * 32, account_uuid="a" * 32, is_admin=True)


async def api(node: ManagementNode, msg: APIMessage, reply_type: type[Any]) -> Any:
    msg.auth = ADMIN
    if isinstance(msg, APICreateMessage):
        msg.resource_uuid = new_uuid()
    reply: APIReply = await node.context.bus.request(msg, reply_type, service=msg.api_service)
    return reply


async def new_l3(node: ManagementNode, zone_uuid: str, iface: str, cidr: str) -> str:
    l2 = await api(
        node,
        APICreateL2NoVlanNetworkMsg(name=iface, zone_uuid=zone_uuid, physical_interface=iface),
        L2NetworkEvent,
    )
    l3 = await api(
        node, APICreateL3NetworkMsg(name=iface, l2_network_uuid=l2.inventory.uuid), L3NetworkEvent
    )
    await api(
        node,
        APIAddIpRangeByNetworkCidrMsg(
            l3_network_uuid=l3.inventory.uuid, name="r", network_cidr=cidr
        ),
        APIReply,
    )
    uuid: str = l3.inventory.uuid
    return uuid


async def allocate(node: ManagementNode, l3_uuid: str) -> UsedIpInventory:
    reply = await node.context.bus.request(AllocateIpMsg(l3_network_uuid=l3_uuid), AllocateIpReply)
    assert reply.ip is not None
    return reply.ip


async def release(node: ManagementNode, l3_uuid: str, ip: UsedIpInventory) -> None:
    reply = await node.context.bus.call(ReleaseIpMsg(l3_network_uuid=l3_uuid, used_ip_uuid=ip.uuid))
    reply.raise_if_error()


async def per_second(seconds: float, one: Any) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    done, start = 0, loop.time()
    while loop.time() - start < seconds:
        await one()
        done += 1
    return done / (loop.time() - start), done


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    url = args.db_url or f"sqlite+aiosqlite:///{data_dir / 'zstack.db'}"
    await upgrade(url)
    settings = NodeSettings(
        data_dir=data_dir,
        db_url=url,
        simulator=False,
        admin_password=SecretStr("bench"),
    )
    node = ManagementNode(settings, broker=InProcBroker(), serve_http=False)
    await node.start()
    results: dict[str, Any] = {"db": url.split(":", 1)[0]}
    try:
        zone = await api(node, APICreateZoneMsg(name="bench"), ZoneEvent)
        z = zone.inventory.uuid
        serial_l3 = await new_l3(node, z, "eth0", "10.0.0.0/16")
        rate, _ = await per_second(args.seconds, lambda: allocate(node, serial_l3))
        results["serial_per_s"] = round(rate)

        for i, n in enumerate(args.burst):
            l3 = await new_l3(node, z, f"eth{i + 1}", f"10.{i + 1}.0.0/16")
            started = time.perf_counter()
            ips = await asyncio.gather(*(allocate(node, l3) for _ in range(n)))
            elapsed = time.perf_counter() - started
            assert len({ip.ip for ip in ips}) == n
            results[f"burst_{n}_per_s"] = round(n / elapsed)

        wrap_l3 = await new_l3(node, z, "eth9", "10.200.0.0/22")  # 1021 addresses
        held: list[UsedIpInventory] = []
        for _ in range(3):
            held.extend(await asyncio.gather(*(allocate(node, wrap_l3) for _ in range(319))))
        for ip in held[::15][:64]:
            await release(node, wrap_l3, ip)
        rounds = 64 + 64
        started = time.perf_counter()
        for _ in range(rounds):
            await allocate(node, wrap_l3)
        results["wrap_per_s"] = round(rounds / (time.perf_counter() - started))

        cycled = await allocate(node, serial_l3)

        async def cycle() -> None:
            nonlocal cycled
            await release(node, serial_l3, cycled)
            cycled = await allocate(node, serial_l3)

        rate, _ = await per_second(args.seconds, cycle)
        results["release_allocate_per_s"] = round(rate)
    finally:
        await node.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db-url", default=None, help="SQLAlchemy URL of an empty database")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--burst", type=int, nargs="*", default=[200, 2000, 10000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(asyncio.run(run(args, Path(tmp)))))


if __name__ == "__main__":
    main()
