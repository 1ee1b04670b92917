"""What CreateVmInstance asks for, checked and resolved before anything is made: sizes
from the instance offering (or cpuNum/memorySize), the image, the disks, the L3 networks
and their zone, placement, and the system tags the create reads (``hostname::``,
``staticIp::``). Reads only: a refusal here changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.api.messages import AuthContext
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.services.cluster.models import ClusterVO
from zstackpy.services.host.messages import HostCandidate
from zstackpy.services.host.models import HostVO
from zstackpy.services.image.messages import GetImageMsg, GetImageReply, ImageInventory
from zstackpy.services.network.messages import (
    GetL3NetworksMsg,
    GetL3NetworksReply,
    L3NetworkSummary,
)
from zstackpy.services.offering.messages import DEFAULT_HOST_ALLOCATOR_STRATEGY
from zstackpy.services.offering.models import DiskOfferingVO, InstanceOfferingVO
from zstackpy.services.tag.patterns import TagPattern
from zstackpy.services.vm.api import APICreateVmInstanceMsg
from zstackpy.services.vm.messages import VM_RESOURCE_TYPE, VmErr
from zstackpy.services.vm.models import VmInstanceVO
from zstackpy.services.vm.reference_reads import Owners, ReferenceReads

ENABLED = "Enabled"
_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


def _is_hostname(value: str) -> bool:
    return len(value) <= 253 and _HOSTNAME.match(value) is not None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


HOSTNAME_TAG = TagPattern(
    VM_RESOURCE_TYPE,
    "hostname::{hostname}",
    checks={"hostname": _is_hostname},
    description="the guest's host name",
)
STATIC_IP_TAG = TagPattern(
    VM_RESOURCE_TYPE,
    "staticIp::{l3NetworkUuid}::{ip}",
    checks={"ip": _is_ip},
    description="the address the VM's NIC on that L3 network gets",
)
VM_TAG_PATTERNS = (HOSTNAME_TAG, STATIC_IP_TAG)


@dataclass(frozen=True, slots=True)
class DataDisk:
    size: int
    disk_offering_uuid: str | None = None


@dataclass
class CreateSpec:
    """The resolved request."""

    cpu_num: int
    cpu_speed: int
    memory_size: int
    reserved_memory_size: int
    instance_offering_uuid: str | None
    allocator_strategy: str
    image: ImageInventory
    root_size: int  # 0: the image's size
    root_disk_offering_uuid: str | None
    data_disks: list[DataDisk]
    networks: list[L3NetworkSummary]  # in NIC order
    zone_uuid: str
    default_l3_uuid: str
    platform: str | None
    architecture: str | None
    hostname: str | None = None
    static_ips: dict[str, str] = field(default_factory=dict)

    @property
    def disk_size(self) -> int:
        """Bytes the VM's volumes need on primary storage, for host allocation."""
        return max(self.root_size, self.image.size) + sum(d.size for d in self.data_disks)


def invalid(description: str, **details: Any) -> ZError:
    return ZError(VmErr.INVALID_SPEC, description, **details)


def not_ready(what: str, uuid: str, state: str) -> ZError:
    return ZError(VmErr.RESOURCE_NOT_READY, f"{what} {uuid} is {state}", uuid=uuid, state=state)


def not_found(what: str, uuid: str) -> ZError:
    return ZError(SysErr.RESOURCE_NOT_FOUND, f"no {what} with uuid {uuid}", uuid=uuid)


async def resolve(
    ctx: NodeContext, msg: APICreateVmInstanceMsg, reads: ReferenceReads
) -> CreateSpec:
    """The request checked and resolved; SYS.1003 for what does not exist (or belongs to
    another account), VM.1002 for contradictions, VM.1003 for what is disabled or not
    Ready. ``reads`` shares the reads concurrent creates make alike."""
    auth = msg.require_auth()
    named = [
        uuid
        for uuid in (
            msg.instance_offering_uuid,
            msg.image_uuid,
            msg.root_disk_offering_uuid,
            *msg.data_disk_offering_uuids,
            *msg.l3_network_uuids,
        )
        if uuid is not None
    ]
    _refuse_unusable(await reads.owners.read(tuple(sorted(set(named)))), named, auth)
    offering = None
    if msg.instance_offering_uuid is not None:
        offering = await reads.offerings.read(msg.instance_offering_uuid)
    sizes = _sizes(offering, msg)
    async with ctx.db.session() as session:
        root_size, data_disks = await _disks(session, msg)
        await _check_placement(session, msg)
    image = await _image(ctx, msg)
    if image.media_type == "ISO" and not root_size:
        raise invalid(
            "an ISO image needs rootDiskOfferingUuid or rootDiskSize for the root volume",
            imageUuid=image.uuid,
        )
    networks, zone_uuid = await _networks(ctx, msg)
    default_l3 = msg.default_l3_network_uuid or msg.l3_network_uuids[0]
    if default_l3 not in msg.l3_network_uuids:
        raise invalid(
            f"defaultL3NetworkUuid {default_l3} is not one of l3NetworkUuids",
            defaultL3NetworkUuid=default_l3,
        )
    hostname, static_ips = _tags(msg)
    cpu_num, cpu_speed, memory, reserved, offering_uuid, strategy = sizes
    return CreateSpec(
        cpu_num=cpu_num,
        cpu_speed=cpu_speed,
        memory_size=memory,
        reserved_memory_size=reserved,
        instance_offering_uuid=offering_uuid,
        allocator_strategy=strategy,
        image=image,
        root_size=root_size,
        root_disk_offering_uuid=msg.root_disk_offering_uuid,
        data_disks=data_disks,
        networks=networks,
        zone_uuid=zone_uuid,
        default_l3_uuid=default_l3,
        platform=msg.platform or image.platform,
        architecture=msg.architecture or image.architecture,
        hostname=hostname,
        static_ips=static_ips,
    )


def _refuse_unusable(owners: Owners, uuids: list[str], auth: AuthContext) -> None:
    """SYS.1003 for the first resource that does not exist or that the caller may not use
    (another account's looks missing: ownership.may_use's rule)."""
    usable = {
        uuid for uuid, account in owners.items() if auth.is_admin or account == auth.account_uuid
    }
    for uuid in uuids:
        if uuid not in usable:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no resource with uuid {uuid}", uuid=uuid)


Sizes = tuple[int, int, int, int, str | None, str]


def _sizes(offering: InstanceOfferingVO | None, msg: APICreateVmInstanceMsg) -> Sizes:
    """cpuNum, cpuSpeed, memorySize, reservedMemorySize, offering uuid, allocator strategy
    (``offering``: the row of ``msg.instance_offering_uuid``, None when it has none)."""
    if msg.instance_offering_uuid is None:
        if msg.cpu_num is None or msg.memory_size is None:
            raise invalid("give instanceOfferingUuid, or cpuNum and memorySize")
        return msg.cpu_num, 0, msg.memory_size, 0, None, DEFAULT_HOST_ALLOCATOR_STRATEGY
    if msg.cpu_num is not None or msg.memory_size is not None:
        raise invalid("give instanceOfferingUuid, or cpuNum and memorySize, not both")
    if offering is None:
        raise not_found("instance offering", msg.instance_offering_uuid)
    if offering.state != ENABLED:
        raise not_ready("instance offering", offering.uuid, offering.state)
    return (
        offering.cpu_num,
        offering.cpu_speed,
        offering.memory_size,
        offering.reserved_memory_size,
        offering.uuid,
        offering.allocator_strategy or DEFAULT_HOST_ALLOCATOR_STRATEGY,
    )


async def _disk_offering_size(session: AsyncSession, uuid: str) -> int:
    offering = await session.get(DiskOfferingVO, uuid)
    if offering is None:
        raise not_found("disk offering", uuid)
    if offering.state != ENABLED:
        raise not_ready("disk offering", uuid, offering.state)
    return offering.disk_size


async def _disks(session: AsyncSession, msg: APICreateVmInstanceMsg) -> tuple[int, list[DataDisk]]:
    """The root volume's size (0: the image's) and the data disks, offerings first."""
    if msg.root_disk_offering_uuid is not None and msg.root_disk_size is not None:
        raise invalid("give rootDiskOfferingUuid or rootDiskSize, not both")
    root_size = msg.root_disk_size or 0
    if msg.root_disk_offering_uuid is not None:
        root_size = await _disk_offering_size(session, msg.root_disk_offering_uuid)
    disks = [
        DataDisk(await _disk_offering_size(session, uuid), uuid)
        for uuid in msg.data_disk_offering_uuids
    ]
    disks.extend(DataDisk(size) for size in msg.data_disk_sizes)
    return root_size, disks


async def _check_placement(session: AsyncSession, msg: APICreateVmInstanceMsg) -> None:
    """A named cluster or host exists and agrees with the named zone and cluster."""
    if msg.cluster_uuid is not None:
        cluster = await session.get(ClusterVO, msg.cluster_uuid)
        if cluster is None:
            raise not_found("cluster", msg.cluster_uuid)
        if msg.zone_uuid is not None and cluster.zone_uuid != msg.zone_uuid:
            raise invalid(
                f"cluster {cluster.uuid} is not in zone {msg.zone_uuid}",
                clusterUuid=cluster.uuid,
                zoneUuid=msg.zone_uuid,
            )
    if msg.host_uuid is not None:
        row = (
            await session.execute(
                select(HostVO.zone_uuid, HostVO.cluster_uuid).where(HostVO.uuid == msg.host_uuid)
            )
        ).one_or_none()
        if row is None:
            raise not_found("host", msg.host_uuid)
        if msg.cluster_uuid is not None and row.cluster_uuid != msg.cluster_uuid:
            raise invalid(
                f"host {msg.host_uuid} is not in cluster {msg.cluster_uuid}",
                hostUuid=msg.host_uuid,
                clusterUuid=msg.cluster_uuid,
            )
        if msg.zone_uuid is not None and row.zone_uuid != msg.zone_uuid:
            raise invalid(
                f"host {msg.host_uuid} is not in zone {msg.zone_uuid}",
                hostUuid=msg.host_uuid,
                zoneUuid=msg.zone_uuid,
            )


async def _image(ctx: NodeContext, msg: APICreateVmInstanceMsg) -> ImageInventory:
    reply = await ctx.bus.request(GetImageMsg(image_uuid=msg.image_uuid), GetImageReply)
    image = reply.inventory
    if image is None:
        raise not_found("image", msg.image_uuid)
    if image.status != "Ready":
        raise not_ready("image", image.uuid, image.status)
    if image.state != ENABLED:
        raise not_ready("image", image.uuid, image.state)
    if image.media_type == "DataVolumeTemplate":
        raise invalid(
            f"image {image.uuid} is a data volume template: a VM boots from a root volume "
            "template or an ISO",
            imageUuid=image.uuid,
            mediaType=image.media_type,
        )
    return image


async def _networks(
    ctx: NodeContext, msg: APICreateVmInstanceMsg
) -> tuple[list[L3NetworkSummary], str]:
    """The L3 networks in NIC order, and their one zone."""
    reply = await ctx.bus.request(
        GetL3NetworksMsg(l3_network_uuids=msg.l3_network_uuids), GetL3NetworksReply
    )
    for net in reply.networks:
        if net.state != ENABLED:
            raise not_ready("L3 network", net.uuid, net.state)
    zones = sorted({net.zone_uuid for net in reply.networks})
    if len(zones) != 1:
        raise invalid("the L3 networks are in different zones", zoneUuids=zones)
    if msg.zone_uuid is not None and zones[0] != msg.zone_uuid:
        raise invalid(
            f"the L3 networks are in zone {zones[0]}, not in zone {msg.zone_uuid}",
            zoneUuid=msg.zone_uuid,
        )
    return reply.networks, zones[0]


def _tags(msg: APICreateVmInstanceMsg) -> tuple[str | None, dict[str, str]]:
    """``hostname::`` and ``staticIp::`` (the portal already checked their form)."""
    hostname: str | None = None
    static_ips: dict[str, str] = {}
    for tag in msg.system_tags:
        found = HOSTNAME_TAG.match(tag)
        if found is not None:
            hostname = found["hostname"]
            continue
        found = STATIC_IP_TAG.match(tag)
        if found is not None:
            l3_uuid = found["l3NetworkUuid"]
            if l3_uuid not in msg.l3_network_uuids:
                raise invalid(
                    f"system tag {tag!r} names an L3 network the VM has no NIC on",
                    tag=tag,
                )
            static_ips[l3_uuid] = found["ip"]
    return hostname, static_ips


def new_vm_row(
    uuid: str,
    msg: APICreateVmInstanceMsg,
    spec: CreateSpec,
    host: HostCandidate,
    internal_id: int,
    state: str,
    vm_type: str | None = None,
) -> VmInstanceVO:
    """The VM's row as the create inserts it, on the host whose capacity it reserved (so
    a node that dies mid-create leaves a record of it); no root volume yet."""
    return VmInstanceVO(
        uuid=uuid,
        name=msg.name,
        description=msg.description,
        zone_uuid=spec.zone_uuid,
        cluster_uuid=host.cluster_uuid,
        host_uuid=host.uuid,
        last_host_uuid=None,
        instance_offering_uuid=spec.instance_offering_uuid,
        image_uuid=spec.image.uuid,
        root_volume_uuid=None,
        default_l3_network_uuid=spec.default_l3_uuid,
        type=vm_type or msg.type,
        hypervisor_type=host.hypervisor_type,
        cpu_num=spec.cpu_num,
        cpu_speed=spec.cpu_speed,
        memory_size=spec.memory_size,
        reserved_memory_size=spec.reserved_memory_size,
        platform=spec.platform,
        architecture=spec.architecture,
        guest_os_type=msg.guest_os_type or spec.image.guest_os_type,
        allocator_strategy=spec.allocator_strategy,
        internal_id=internal_id,
        state=state,
    )
