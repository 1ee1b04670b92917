"""The query phase: the issue's two reference queries through the REST API, timed.

- indexed: the Running VMs of one host (``GET /vm-instances?q=hostUuid=..&q=state=Running``);
- join: the zones holding a VM with a given NIC IP (``GET /zones?q=vmInstance.vmNics.ip=..``),
  which crosses zone -> VM -> NIC.

Hosts and IPs are drawn at random from the whole data center (read from the node's database
when the driver has it, so a sample of a million VMs does not page through the API).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import create_async_engine

from simulator.stress.figures import Errors, Latencies
from simulator.stress.rest import Answer, ApiClient

SAMPLE = 2000  # hosts and NIC IPs drawn for the queries


async def sample_targets(db_url: str) -> tuple[list[str], list[str]]:
    """Random host uuids and VM NIC IPs, ``SAMPLE`` of each at most: the first row at or
    after a random uuid, an index lookup each however large the table."""
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            metadata = MetaData()
            await conn.run_sync(lambda c: metadata.reflect(c, only=["HostVO", "VmNicVO"]))
            hosts, nics = metadata.tables["HostVO"], metadata.tables["VmNicVO"]
            host_uuids: set[str] = set()
            ips: set[str] = set()
            for _ in range(SAMPLE):
                start = f"{random.getrandbits(128):032x}"
                host = await conn.execute(
                    select(hosts.c.uuid)
                    .where(hosts.c.uuid >= start)
                    .order_by(hosts.c.uuid)
                    .limit(1)
                )
                nic = await conn.execute(
                    select(nics.c.ip).where(nics.c.uuid >= start).order_by(nics.c.uuid).limit(1)
                )
                host_uuids.update(host.scalars())
                ips.update(ip for ip in nic.scalars() if ip)
    finally:
        await engine.dispose()
    return sorted(host_uuids), sorted(ips)


async def run_queries(
    client: ApiClient,
    hosts: list[str],
    ips: list[str],
    count: int,
    concurrency: int,
    errors: Errors,
    advance: Callable[[bool], None],
) -> dict[str, Latencies]:
    """``count`` queries of each kind, ``concurrency`` at a time; latency per kind."""

    # Which host or IP to ask about: spread, not secret.
    def pick(items: list[str]) -> str:
        return items[random.randrange(len(items))]  # noqa: S311

    kinds: dict[str, Callable[[], str]] = {
        "indexed_vms_by_host_and_state": lambda: (
            f"/vm-instances?q=hostUuid={pick(hosts)}&q=state=Running"
        ),
        "join_zones_by_vm_nic_ip": lambda: f"/zones?q=vmInstance.vmNics.ip={pick(ips)}",
    }
    latency = {name: Latencies() for name in kinds}
    loop = asyncio.get_running_loop()
    work = [name for name in kinds for _ in range(count)]
    random.shuffle(work)
    queue = iter(work)

    async def worker() -> None:
        for name in queue:
            started = loop.time()
            answer: Answer = await client.request("GET", kinds[name]())
            failed = errors.add_answer(answer)
            if not failed:
                if not answer.body.get("inventories"):
                    errors.add_exception(RuntimeError(f"{name} found nothing"))
                    failed = True
                else:
                    latency[name].add(loop.time() - started)
            advance(failed)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latency
