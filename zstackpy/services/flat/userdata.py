"""The flat provider's userdata: what a VM asked for at its creation in ``userdata::<base64>``
system tags, put on the host running it (``/flatnetworkprovider/userdata/...``) for the
metadata address 169.254.169.254, which the host serves to the VM's default NIC.

As in ZStack, only the default L3 network's NIC is served, and only when that network
takes Userdata from this provider. A VM without userdata costs its host no command."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.services.networkservice.extensions import USERDATA, VmServicesEvent
from zstackpy.services.tag.models import SystemTagVO
from zstackpy.services.tag.patterns import TagPattern
from zstackpy.services.vm.create_spec import HOSTNAME_TAG
from zstackpy.services.vm.messages import VM_RESOURCE_TYPE

APPLY = "/flatnetworkprovider/userdata/apply"
BATCH_APPLY = "/flatnetworkprovider/userdata/batchapply"
RELEASE = "/flatnetworkprovider/userdata/release"


def _is_base64(value: str) -> bool:
    try:
        return bool(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return False


USERDATA_TAG = TagPattern(
    VM_RESOURCE_TYPE,
    "userdata::{userdata}",
    checks={"userdata": _is_base64},
    description="what the guest reads at http://169.254.169.254/latest/user-data (base64)",
)


async def _recorded_tags(ctx: NodeContext, vm_uuid: str) -> tuple[str, ...]:
    async with ctx.db.read_session() as session:
        rows = await session.execute(
            select(SystemTagVO.tag)
            .where(SystemTagVO.resource_uuid == vm_uuid)
            .order_by(SystemTagVO.create_date, SystemTagVO.uuid)
        )
        return tuple(rows.scalars())


async def userdata_of(ctx: NodeContext, event: VmServicesEvent) -> list[dict[str, Any]]:
    """The VM's userdata command entry (none or one): its default NIC, if its network
    takes Userdata from this provider and the VM has userdata."""
    served = [n for n in event.nics if n.is_default and USERDATA in event.services.get(n.uuid, ())]
    if not served or served[0].ip is None:
        return []
    nic = served[0]
    placement = event.placement
    tags = placement.system_tags
    if tags is None:
        tags = await _recorded_tags(ctx, placement.vm_uuid)
    userdata, hostname = [], placement.hostname
    for tag in tags:
        if (found := USERDATA_TAG.match(tag)) is not None:
            userdata.append(found["userdata"])
        elif hostname is None and (named := HOSTNAME_TAG.match(tag)) is not None:
            hostname = named["hostname"]
    if not userdata:
        return []
    return [
        {
            "metadata": {"vmUuid": placement.vm_uuid, "vmHostname": hostname},
            "userdataList": userdata,
            "vmIp": nic.ip,
            "netmask": nic.netmask,
            "bridgeName": nic.bridge_name,
            "l3NetworkUuid": nic.l3_network_uuid,
        }
    ]


def release_of(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a release names of each entry: the VM, its address, bridge and L3 network
    (one address may be served on two networks of a host)."""
    return [
        {
            "vmUuid": e["metadata"]["vmUuid"],
            "vmIp": e["vmIp"],
            "bridgeName": e["bridgeName"],
            "l3NetworkUuid": e["l3NetworkUuid"],
        }
        for e in entries
    ]
