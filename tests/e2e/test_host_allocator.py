"""The host allocator over the bus, on hosts added over REST: filters, strategies, dry
runs, atomic reservations under concurrency, and capacity given back on rollback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from simulator import Simulator
from tests.support.api_client import ApiClient
from tests.support.datacenter import add_cluster, add_kvm_host, add_zone, set_global_config
from zstackpy.core.errors import ZError
from zstackpy.core.flow import Flow
from zstackpy.core.plugin import PluginRegistry
from zstackpy.node.node import ManagementNode
from zstackpy.services.host.allocator.flows import AllocateHostCtx
from zstackpy.services.host.extensions import HostAllocatorFilter
from zstackpy.services.host.messages import (
    AllocateHostMsg,
    AllocateHostReply,
    HostCandidate,
    ReturnHostCapacityMsg,
)

GIB = 1 << 30
MIB = 1 << 20
FAIL_AFTER_RESERVE = "fail-after-reserve"  # the vm uuid that makes the test step fail


class _FailAfterReserve(Flow[AllocateHostCtx]):
    async def run(self, ctx: AllocateHostCtx) -> None:
        if ctx.request.vm_instance_uuid == FAIL_AFTER_RESERVE:
            raise ZError("TEST.1", "a later step failed")


class _NoQuarantinedHosts:
    """A HostAllocatorFilter as another domain would write one."""

    async def filter_hosts(
        self, request: AllocateHostMsg, candidates: list[HostCandidate]
    ) -> list[HostCandidate]:
        return [h for h in candidates if not h.name.startswith("quarantined")]


class _TestPlugin:
    """Appends a step after reserve-capacity and registers a filter, as plugins do."""

    name = "allocator-test"
    flow_dir: Path | None = None

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_flow("fail-after-reserve", _FailAfterReserve)
        assert self.flow_dir is not None
        registry.add_flow_dir(self.flow_dir)
        registry.add_extension(HostAllocatorFilter, _NoQuarantinedHosts())


allocator_test_plugin = _TestPlugin()


@pytest.fixture
def node_overrides(tmp_path: Path) -> dict[str, object]:
    flow_dir = tmp_path / "flows"
    flow_dir.mkdir()
    (flow_dir / "extend.yaml").write_text(
        "extend: host-allocate\nafter: reserve-capacity\nsteps: [fail-after-reserve]\n"
    )
    allocator_test_plugin.flow_dir = flow_dir
    return {"plugins": [f"{__name__}:allocator_test_plugin"]}


@pytest.fixture
async def cluster(admin: ApiClient) -> dict[str, Any]:
    zone = await add_zone(admin, "alloc")
    return await add_cluster(admin, zone["uuid"], "alloc")


async def _small_host(
    admin: ApiClient, sim: Simulator, cluster_uuid: str, ip: str, memory: int, **params: Any
) -> dict[str, Any]:
    """A host offering ``memory`` bytes to VMs (kvm reservedMemory, 1 GiB, on top)."""
    sim.declare(ip, memory_size=memory + GIB, cpu_num=4)
    return await add_kvm_host(admin, cluster_uuid, ip, **params)


async def _allocate(node: ManagementNode, **fields: Any) -> AllocateHostReply:
    return await node.context.bus.request(AllocateHostMsg(**fields), AllocateHostReply)


async def _free_memory(admin: ApiClient, uuid: str) -> int:
    answer = await admin.request("GET", f"/hosts/{uuid}")
    memory: int = answer.body["inventories"][0]["availableMemoryCapacity"]
    return memory


async def test_capacity_filter_and_reservation(
    admin: ApiClient, sim: Simulator, node: ManagementNode, cluster: dict[str, Any]
) -> None:
    small = await _small_host(admin, sim, cluster["uuid"], "10.20.0.1", 1 * GIB)
    big = await _small_host(admin, sim, cluster["uuid"], "10.20.0.2", 4 * GIB)
    reply = await _allocate(node, cpu_num=2, memory_size=2 * GIB)
    assert reply.host is not None
    assert reply.host.uuid == big["uuid"]
    assert await _free_memory(admin, big["uuid"]) == 2 * GIB
    assert await _free_memory(admin, small["uuid"]) == 1 * GIB

    too_big = await node.context.bus.call(AllocateHostMsg(cpu_num=1, memory_size=3 * GIB))
    assert too_big.error is not None
    assert too_big.error.code == "HOST.1101"
    assert too_big.error.details["filter"] == "filter-by-capacity"
    # vCPUs: 4 CPUs x over-provisioning ratio 10 = 40 per host.
    too_many_cpus = await node.context.bus.call(AllocateHostMsg(cpu_num=41, memory_size=1))
    assert too_many_cpus.error is not None
    assert too_many_cpus.error.code == "HOST.1101"


async def test_reservation_is_atomic_under_concurrency(
    admin: ApiClient, sim: Simulator, node: ManagementNode, cluster: dict[str, Any]
) -> None:
    # Room for exactly 4 VMs of 512 MiB on each of two hosts: 8 in all.
    hosts = [
        await _small_host(admin, sim, cluster["uuid"], f"10.21.0.{i}", 2 * GIB) for i in (1, 2)
    ]
    replies = await asyncio.gather(
        *(
            node.context.bus.call(AllocateHostMsg(cpu_num=1, memory_size=512 * MIB))
            for _ in range(50)
        )
    )
    won = [r for r in replies if r.success]
    lost = [r for r in replies if not r.success]
    assert len(won) == 8
    assert {r.error.code for r in lost if r.error is not None} <= {"HOST.1101", "HOST.1102"}
    assert len(lost) == 42
    for host in hosts:
        assert await _free_memory(admin, host["uuid"]) == 0


async def test_failed_step_after_reserve_gives_capacity_back(
    admin: ApiClient, sim: Simulator, node: ManagementNode, cluster: dict[str, Any]
) -> None:
    host = await _small_host(admin, sim, cluster["uuid"], "10.22.0.1", 2 * GIB)
    failed = await node.context.bus.call(
        AllocateHostMsg(vm_instance_uuid=FAIL_AFTER_RESERVE, cpu_num=1, memory_size=GIB)
    )
    assert failed.error is not None
    assert failed.error.code == "TEST.1"
    assert await _free_memory(admin, host["uuid"]) == 2 * GIB

    reply = await _allocate(node, cpu_num=1, memory_size=GIB)
    assert reply.host is not None
    assert await _free_memory(admin, host["uuid"]) == GIB
    returned = await node.context.bus.call(
        ReturnHostCapacityMsg(host_uuid=host["uuid"], cpu_num=1, memory_size=GIB)
    )
    assert returned.success
    assert await _free_memory(admin, host["uuid"]) == 2 * GIB
    # Giving back more than was taken never goes above the total.
    await node.context.bus.call(
        ReturnHostCapacityMsg(host_uuid=host["uuid"], cpu_num=5, memory_size=5 * GIB)
    )
    assert await _free_memory(admin, host["uuid"]) == 2 * GIB


async def test_strategies_and_dry_run(
    admin: ApiClient, sim: Simulator, node: ManagementNode, cluster: dict[str, Any]
) -> None:
    hosts = {
        size: await _small_host(admin, sim, cluster["uuid"], f"10.23.0.{size}", size * GIB)
        for size in (1, 3, 2)
    }
    listed = await admin.request("GET", "/hosts/allocators/strategies")
    assert listed.status == 200, listed.body
    assert {"DefaultHostAllocatorStrategy", "MinimumMemoryUsageHostAllocatorStrategy"} <= set(
        listed.body["hostAllocatorStrategies"]
    )

    dry = await _allocate(
        node, cpu_num=1, memory_size=GIB, dry_run=True,
        strategy="MinimumMemoryUsageHostAllocatorStrategy",
    )  # fmt: skip
    assert dry.host is None
    assert [c.uuid for c in dry.candidates] == [hosts[s]["uuid"] for s in (3, 2, 1)]
    for size, host in hosts.items():
        assert await _free_memory(admin, host["uuid"]) == size * GIB

    # Fewer hosts than a page: whatever uuid a page starts from, it holds every host, so
    # the strategy orders them all (a page cut at the end of the uuid list failed so).
    for _ in range(12):
        chosen = await _allocate(
            node, cpu_num=1, memory_size=GIB, strategy="MinimumMemoryUsageHostAllocatorStrategy"
        )
        assert chosen.host is not None
        assert chosen.host.uuid == hosts[3]["uuid"]
        given_back = await node.context.bus.call(
            ReturnHostCapacityMsg(host_uuid=chosen.host.uuid, cpu_num=1, memory_size=GIB)
        )
        assert given_back.success
    randomly = {
        (await _allocate(node, cpu_num=1, memory_size=1, dry_run=True)).candidates[0].uuid
        for _ in range(30)
    }
    assert len(randomly) > 1  # the default strategy spreads the first choice

    unknown = await node.context.bus.call(
        AllocateHostMsg(cpu_num=1, memory_size=1, strategy="Nope")
    )
    assert unknown.error is not None
    assert unknown.error.code == "HOST.1103"


async def test_filters_state_tags_and_plugins(
    admin: ApiClient, sim: Simulator, node: ManagementNode, cluster: dict[str, Any]
) -> None:
    plain = await _small_host(admin, sim, cluster["uuid"], "10.24.0.1", GIB)
    gpu = await _small_host(
        admin, sim, cluster["uuid"], "10.24.0.2", GIB, systemTags=["hostTag::gpu"]
    )
    await _small_host(admin, sim, cluster["uuid"], "10.24.0.3", GIB, name="quarantined-1")

    tagged = await _allocate(
        node, cpu_num=1, memory_size=1, host_tags=["hostTag::gpu"], dry_run=True
    )
    assert [c.uuid for c in tagged.candidates] == [gpu["uuid"]]
    no_tag = await node.context.bus.call(
        AllocateHostMsg(cpu_num=1, memory_size=1, host_tags=["hostTag::fpga"])
    )
    assert no_tag.error is not None
    assert no_tag.error.details["filter"] == "filter-by-host-tags"

    # The plugin's filter removed the quarantined host; excluded hosts are skipped.
    every = await _allocate(node, cpu_num=1, memory_size=1, dry_run=True)
    assert {c.uuid for c in every.candidates} == {plain["uuid"], gpu["uuid"]}
    excluded = await _allocate(
        node, cpu_num=1, memory_size=1, dry_run=True, excluded_host_uuids=[gpu["uuid"]]
    )
    assert [c.uuid for c in excluded.candidates] == [plain["uuid"]]

    await admin.action(
        f"/hosts/{plain['uuid']}/actions", "changeHostState", {"stateEvent": "disable"}
    )
    enabled = await _allocate(node, cpu_num=1, memory_size=1, dry_run=True)
    assert [c.uuid for c in enabled.candidates] == [gpu["uuid"]]
    pinned = await node.context.bus.call(
        AllocateHostMsg(cpu_num=1, memory_size=1, host_uuid=plain["uuid"])
    )
    assert pinned.error is not None
    assert pinned.error.details["filter"] == "candidate-hosts"


async def test_paginated_placement_finds_the_one_host_with_room(
    admin: ApiClient, sim: Simulator, node: ManagementNode, cluster: dict[str, Any]
) -> None:
    """Pages of two hosts among seven, one host with room: whichever page a placement
    starts from, it reads on (wrapping at the end) until it finds that host."""
    await set_global_config(admin, "hostAllocator", "paginationLimit", 2)
    for i in range(6):
        await _small_host(admin, sim, cluster["uuid"], f"10.25.0.{i + 1}", GIB // 2)
    roomy = await _small_host(admin, sim, cluster["uuid"], "10.25.0.9", 8 * GIB)
    for _ in range(6):
        reply = await _allocate(node, cpu_num=1, memory_size=GIB)
        assert reply.host is not None
        assert reply.host.uuid == roomy["uuid"]
        assert reply.candidates == []  # a placement's reply does not carry the pages
    assert await _free_memory(admin, roomy["uuid"]) == 2 * GIB

    # No host of any page fits: the error names the filter, after every page was read.
    full = await node.context.bus.call(AllocateHostMsg(cpu_num=1, memory_size=3 * GIB))
    assert full.error is not None
    assert full.error.code == "HOST.1101"
    assert full.error.details["filter"] == "filter-by-capacity"
    assert full.error.details["pagesRead"] >= 4  # 7 hosts, 2 a page, from anywhere
    # The plugin's filter is reported when it is what the closest page met.
    await _small_host(admin, sim, cluster["uuid"], "10.25.0.10", 8 * GIB, name="quarantined-2")
    assert await _free_memory(admin, roomy["uuid"]) == 2 * GIB
    filtered = await node.context.bus.call(AllocateHostMsg(cpu_num=1, memory_size=3 * GIB))
    assert filtered.error is not None
    assert filtered.error.details["filter"] == "_NoQuarantinedHosts"


async def test_paginated_placements_spread_over_every_page(
    admin: ApiClient, sim: Simulator, node: ManagementNode, cluster: dict[str, Any]
) -> None:
    await set_global_config(admin, "hostAllocator", "paginationLimit", 2)
    # Evenly spaced uuids: a random start lands before each host's page equally often.
    # (Random uuids may leave a host a sliver of the uuid space: this test failed so.)
    step = 2**128 // 8
    hosts = [
        await _small_host(
            admin,
            sim,
            cluster["uuid"],
            f"10.26.0.{i + 1}",
            64 * GIB,
            resourceUuid=f"{i * step + step // 2:032x}",
        )
        for i in range(8)
    ]
    assert hosts[0]["uuid"] == f"{step // 2:032x}"
    chosen = set()
    for _ in range(100):  # each host missed by all: (7/8)^100, about 1 in 600,000
        reply = await _allocate(node, cpu_num=1, memory_size=MIB)
        assert reply.host is not None
        chosen.add(reply.host.uuid)
    # A page holds two hosts: only a random start per placement reaches all eight.
    assert chosen == {h["uuid"] for h in hosts}
