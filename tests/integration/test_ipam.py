"""IPAM over the bus on a started embedded node, on SQLite and on the real MariaDB: the
allocator never hands out one address twice, says clearly when an L3 is full, gives back
released addresses, and honours (or clearly refuses) a required address."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import TypeVar

import pytest
from pydantic import SecretStr

from tests.support.mariadb import fresh_mariadb
from zstackpy.api.messages import APICreateMessage, APIMessage, APIReply, AuthContext
from zstackpy.core.bus.inproc import InProcBroker
from zstackpy.core.db import upgrade
from zstackpy.core.errors import ZError
from zstackpy.core.ids import new_uuid
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode
from zstackpy.services.network.errors import L3Err
from zstackpy.services.network.inventories import UsedIpInventory
from zstackpy.services.network.ipam.allocator import IpAllocator
from zstackpy.services.network.ipam.service import IpamService
from zstackpy.services.network.l2.api import APICreateL2NoVlanNetworkMsg, L2NetworkEvent
from zstackpy.services.network.l3.api import APICreateL3NetworkMsg, L3NetworkEvent
from zstackpy.services.network.l3.range_api import APIAddIpRangeByNetworkCidrMsg, IpRangesEvent
from zstackpy.services.network.messages import AllocateIpMsg, AllocateIpReply, ReleaseIpMsg
from zstackpy.services.zone.messages import APICreateZoneMsg, ZoneEvent

R = TypeVar("R", bound=APIReply)
ADMIN = AuthContext(session_uuid="0" * 32, account_uuid="a" * 32, is_admin=True)


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("mariadb", marks=pytest.mark.real_server)]
)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database brought to the newest schema."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'zstack.db'}"
        await upgrade(url)
        yield url
    else:
        async with fresh_mariadb() as url:
            await upgrade(url)
            yield url


StartNode = Callable[[], Awaitable[ManagementNode]]


@pytest.fixture
async def start_node(db_url: str, tmp_path: Path) -> AsyncIterator[StartNode]:
    """Start nodes on one database and one in-process broker (a cluster in one process)."""
    broker = InProcBroker()
    nodes: list[ManagementNode] = []

    async def start() -> ManagementNode:
        settings = NodeSettings(
            data_dir=tmp_path,
            db_url=db_url,
            http_port=0,
            simulator=False,
            admin_password=SecretStr("ipam-test-admin"),
        )
        node = ManagementNode(settings, broker=broker, serve_http=False)
        await node.start()
        nodes.append(node)
        return node

    yield start
    for node in reversed(nodes):
        await node.stop()


@pytest.fixture
async def node(start_node: StartNode) -> ManagementNode:
    return await start_node()


async def api(node: ManagementNode, msg: APIMessage, reply_type: type[R]) -> R:
    """What the portal does once it admitted an admin's message."""
    msg.auth = ADMIN
    if isinstance(msg, APICreateMessage):
        msg.resource_uuid = new_uuid()
    return await node.context.bus.request(msg, reply_type, service=msg.api_service)


@dataclass
class Network:
    l3_uuid: str
    range_uuids: list[str]


async def l3_with_cidr(node: ManagementNode, cidr: str, gateway: str | None = None) -> Network:
    zone = await api(node, APICreateZoneMsg(name="z"), ZoneEvent)
    assert zone.inventory is not None
    l2 = await api(
        node,
        APICreateL2NoVlanNetworkMsg(
            name="l2", zone_uuid=zone.inventory.uuid, physical_interface="eth0"
        ),
        L2NetworkEvent,
    )
    assert l2.inventory is not None
    l3 = await api(
        node, APICreateL3NetworkMsg(name="l3", l2_network_uuid=l2.inventory.uuid), L3NetworkEvent
    )
    assert l3.inventory is not None
    added = await api(
        node,
        APIAddIpRangeByNetworkCidrMsg(
            l3_network_uuid=l3.inventory.uuid, name="r", network_cidr=cidr, gateway=gateway
        ),
        IpRangesEvent,
    )
    return Network(l3.inventory.uuid, [r.uuid for r in added.inventories or []])


async def allocate(node: ManagementNode, l3_uuid: str, **fields: str) -> UsedIpInventory:
    reply = await node.context.bus.request(
        AllocateIpMsg(l3_network_uuid=l3_uuid, **fields), AllocateIpReply
    )
    assert reply.ip is not None
    return reply.ip


async def allocate_error(node: ManagementNode, l3_uuid: str, **fields: str) -> ZError:
    with pytest.raises(ZError) as caught:
        await allocate(node, l3_uuid, **fields)
    return caught.value


async def allocate_many(node: ManagementNode, l3_uuid: str, count: int) -> list[UsedIpInventory]:
    return list(await asyncio.gather(*(allocate(node, l3_uuid) for _ in range(count))))


async def test_200_concurrent_allocations_give_200_distinct_addresses(
    node: ManagementNode,
) -> None:
    net = await l3_with_cidr(node, "192.168.10.0/24")
    ips = await allocate_many(node, net.l3_uuid, 200)
    addresses = [ip.ip for ip in ips]
    assert len(set(addresses)) == 200
    assert len({ip.uuid for ip in ips}) == 200
    for ip in ips:
        assert IPv4Address("192.168.10.2") <= IPv4Address(ip.ip) <= IPv4Address("192.168.10.254")
        assert ip.gateway == "192.168.10.1"
        assert ip.netmask == "255.255.255.0"
        assert ip.l3_network_uuid == net.l3_uuid
        assert ip.ip_range_uuid == net.range_uuids[0]
        assert ip.ip_in_long == int(IPv4Address(ip.ip))


async def test_a_full_l3_answers_a_clear_error(node: ManagementNode) -> None:
    net = await l3_with_cidr(node, "10.20.0.0/24")
    ips = await allocate_many(node, net.l3_uuid, 253)  # .2 to .254: .1 is the gateway
    assert len({ip.ip for ip in ips}) == 253
    error = await allocate_error(node, net.l3_uuid)
    assert error.code == L3Err.NO_FREE_IP
    assert "no free IP in L3 network l3" in error.description
    assert "10.20.0.2-10.20.0.254" in error.description
    assert error.details["ip_range_uuids"] == net.range_uuids


async def test_the_ones_past_the_end_of_a_burst_fail_and_the_rest_succeed(
    node: ManagementNode,
) -> None:
    net = await l3_with_cidr(node, "10.21.0.0/28")  # .2 to .14: 13 addresses
    results = await asyncio.gather(
        *(allocate(node, net.l3_uuid) for _ in range(20)), return_exceptions=True
    )
    given = [r.ip for r in results if isinstance(r, UsedIpInventory)]
    refused = [r for r in results if isinstance(r, ZError)]
    assert len(set(given)) == len(given) == 13
    assert len(refused) == 7
    assert {e.code for e in refused} == {L3Err.NO_FREE_IP}


async def test_a_released_address_is_handed_out_again(node: ManagementNode) -> None:
    net = await l3_with_cidr(node, "10.22.0.0/28")
    ips = await allocate_many(node, net.l3_uuid, 13)
    by_ip = {ip.ip: ip for ip in ips}
    released = await node.context.bus.call(
        ReleaseIpMsg(l3_network_uuid=net.l3_uuid, ip="10.22.0.7")
    )
    assert released.success, released.error
    by_uuid = await node.context.bus.call(
        ReleaseIpMsg(l3_network_uuid=net.l3_uuid, used_ip_uuid=by_ip["10.22.0.9"].uuid)
    )
    assert by_uuid.success, by_uuid.error
    again = await node.context.bus.call(
        ReleaseIpMsg(l3_network_uuid=net.l3_uuid, used_ip_uuid=by_ip["10.22.0.9"].uuid)
    )
    assert again.success, "releasing twice is no error"
    back = sorted(
        [(await allocate(node, net.l3_uuid)).ip, (await allocate(node, net.l3_uuid)).ip],
        key=IPv4Address,
    )
    assert back == ["10.22.0.7", "10.22.0.9"]
    assert (await allocate_error(node, net.l3_uuid)).code == L3Err.NO_FREE_IP


async def test_a_required_address_is_given_once_and_never_picked_by_others(
    node: ManagementNode,
) -> None:
    net = await l3_with_cidr(node, "10.23.0.0/28")
    wanted = await allocate(node, net.l3_uuid, required_ip="10.23.0.2", used_for="Vip")
    assert (wanted.ip, wanted.used_for) == ("10.23.0.2", "Vip")
    taken = await allocate_error(node, net.l3_uuid, required_ip="10.23.0.2")
    assert taken.code == L3Err.IP_NOT_AVAILABLE
    assert "already in use" in taken.description
    gateway = await allocate_error(node, net.l3_uuid, required_ip="10.23.0.1")
    assert gateway.code == L3Err.IP_NOT_AVAILABLE
    assert "gateway" in gateway.description
    outside = await allocate_error(node, net.l3_uuid, required_ip="10.99.0.5")
    assert outside.code == L3Err.IP_NOT_AVAILABLE
    assert "none of its IP ranges" in outside.description
    bad = await allocate_error(node, net.l3_uuid, required_ip="not-an-ip")
    assert bad.code == "SYS.1007"
    # Ten callers race for one address while others take whatever is free.
    racing = await asyncio.gather(
        *(allocate(node, net.l3_uuid, required_ip="10.23.0.9") for _ in range(10)),
        *(allocate(node, net.l3_uuid) for _ in range(5)),
        return_exceptions=True,
    )
    winners = [r for r in racing[:10] if isinstance(r, UsedIpInventory)]
    assert [w.ip for w in winners] == ["10.23.0.9"]
    others = [r.ip for r in racing[10:] if isinstance(r, UsedIpInventory)]
    assert len(others) == 5
    assert "10.23.0.9" not in others
    assert "10.23.0.2" not in others


async def test_two_nodes_that_both_think_they_own_an_l3_still_never_share_an_address(
    start_node: StartNode,
) -> None:
    """While the ring changes, the old and the new owner of an L3 may both allocate for a
    moment. Their batches choose the same addresses; the database's UNIQUE guard refuses
    the second commit and that batch is planned again from what is now stored."""
    old_owner, new_owner = await start_node(), await start_node()
    net = await l3_with_cidr(old_owner, "10.24.0.0/24")

    def allocator(node: ManagementNode) -> IpAllocator:
        service = node.services[IpamService]
        assert isinstance(service, IpamService)
        return service.allocator

    # Straight to each node's allocator: the ring would send both to one owner.
    ips = await asyncio.gather(
        *(
            allocator(owner).allocate(AllocateIpMsg(l3_network_uuid=net.l3_uuid))
            for owner in (old_owner, new_owner)
            for _ in range(40)
        )
    )
    assert len({ip.ip for ip in ips}) == 80
