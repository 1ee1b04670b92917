"""What a host must hold of security groups, read from the database: the rules of every
group each member NIC it runs belongs to, and the addresses of the groups those rules name
as peers. A host is always sent its whole set (``/securitygroup/refreshrulesonhost``), so
sending twice changes nothing and a host that missed a change is right after the next one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from zstackpy.core.context import NodeContext
from zstackpy.services.securitygroup.messages import NicOnHost
from zstackpy.services.securitygroup.models import (
    SecurityGroupRuleVO,
    SecurityGroupVO,
    VmNicSecurityGroupRefVO,
)
from zstackpy.services.vm.models import VmInstanceVO, VmNicVO
from zstackpy.services.vm.states import ON_HOST

REFRESH_PATH = "/securitygroup/refreshrulesonhost"
REFRESH_TIMEOUT_S = 120.0
_ON_HOST = sorted(s.value for s in ON_HOST)
_ENABLED = "Enabled"


def rule_to(rule: SecurityGroupRuleVO) -> dict[str, Any]:
    """One rule as the agent applies it."""
    return {
        "uuid": rule.uuid,
        "securityGroupUuid": rule.security_group_uuid,
        "type": rule.type,
        "protocol": rule.protocol,
        "startPort": rule.start_port,
        "endPort": rule.end_port,
        "allowedCidr": rule.allowed_cidr,
        "remoteGroupUuid": rule.remote_security_group_uuid,
        "priority": rule.priority,
        "action": rule.action,
        "ipVersion": rule.ip_version,
    }


async def host_command(
    ctx: NodeContext,
    host_uuid: str,
    arriving: Iterable[NicOnHost] = (),
    leaving: Iterable[str] = (),
) -> dict[str, Any]:
    """The refresh command for ``host_uuid``: its member NICs (those of VMs the database
    places there, and ``arriving`` ones, less ``leaving`` ones) with their groups' enabled
    rules."""
    incoming = {n.uuid: n for n in arriving}
    incoming_vms = {n.vm_instance_uuid for n in incoming.values()}
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(
                VmNicVO.uuid,
                VmNicVO.vm_instance_uuid,
                VmNicVO.internal_name,
                VmNicVO.mac,
                VmNicVO.ip,
            )
            .join(VmInstanceVO, VmInstanceVO.uuid == VmNicVO.vm_instance_uuid)
            .where(VmInstanceVO.host_uuid == host_uuid, VmInstanceVO.state.in_(_ON_HOST))
        )
        nics = {
            r.uuid: NicOnHost(
                uuid=r.uuid,
                vm_instance_uuid=r.vm_instance_uuid,
                internal_name=r.internal_name,
                mac=r.mac,
                ip=r.ip,
            )
            for r in rows.all()
            if r.vm_instance_uuid not in incoming_vms
        }
        nics.update(incoming)
        for gone in leaving:
            nics.pop(gone, None)
        groups_of: dict[str, list[str]] = {}
        if nics:
            refs = await session.execute(
                select(
                    VmNicSecurityGroupRefVO.vm_nic_uuid, VmNicSecurityGroupRefVO.security_group_uuid
                )
                .join(
                    SecurityGroupVO,
                    SecurityGroupVO.uuid == VmNicSecurityGroupRefVO.security_group_uuid,
                )
                .where(
                    VmNicSecurityGroupRefVO.vm_nic_uuid.in_(list(nics)),
                    SecurityGroupVO.state == _ENABLED,
                )
            )
            for nic_uuid, group in refs.all():
                groups_of.setdefault(nic_uuid, []).append(group)
        groups = sorted({g for gs in groups_of.values() for g in gs})
        rules: list[SecurityGroupRuleVO] = []
        if groups:
            rules = list(
                (
                    await session.execute(
                        select(SecurityGroupRuleVO)
                        .where(
                            SecurityGroupRuleVO.security_group_uuid.in_(groups),
                            SecurityGroupRuleVO.state == _ENABLED,
                        )
                        .order_by(
                            SecurityGroupRuleVO.priority,
                            SecurityGroupRuleVO.create_date,
                            SecurityGroupRuleVO.uuid,
                        )
                    )
                ).scalars()
            )
    # A session of its own, after this one closed: SQLite's pool holds one connection.
    members = await group_members(
        ctx, {r.remote_security_group_uuid for r in rules if r.remote_security_group_uuid}
    )
    by_group: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        by_group.setdefault(rule.security_group_uuid, []).append(rule_to(rule))
    rule_tos = []
    for nic_uuid in sorted(groups_of):
        nic = nics[nic_uuid]
        nic_groups = sorted(groups_of[nic_uuid])
        rule_tos.append(
            {
                "vmNicUuid": nic.uuid,
                "vmInstanceUuid": nic.vm_instance_uuid,
                "vmNicInternalName": nic.internal_name,
                "vmNicMac": nic.mac,
                "vmNicIp": nic.ip,
                "securityGroupUuids": nic_groups,
                "rules": [r for g in nic_groups for r in by_group.get(g, [])],
            }
        )
    return {"ruleTOs": rule_tos, "securityGroupMembers": members}


async def group_members(ctx: NodeContext, groups: set[str]) -> dict[str, list[str]]:
    """group uuid -> the addresses of its member NICs (whatever their VMs' states)."""
    if not groups:
        return {}
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(VmNicSecurityGroupRefVO.security_group_uuid, VmNicVO.ip)
            .join(VmNicVO, VmNicVO.uuid == VmNicSecurityGroupRefVO.vm_nic_uuid)
            .where(VmNicSecurityGroupRefVO.security_group_uuid.in_(sorted(groups)))
        )
        members: dict[str, list[str]] = {g: [] for g in sorted(groups)}
        for group, ip in rows.all():
            if ip:
                members[group].append(ip)
    return {g: sorted(ips) for g, ips in members.items()}


async def hosts_of_groups(ctx: NodeContext, groups: Iterable[str]) -> set[str]:
    """Hosts whose rule sets depend on these groups: those running their members, and
    those running members of groups whose rules name these groups as peers."""
    wanted = set(groups)
    if not wanted:
        return set()
    async with ctx.db.session() as session:
        naming = await session.execute(
            select(SecurityGroupRuleVO.security_group_uuid)
            .where(SecurityGroupRuleVO.remote_security_group_uuid.in_(sorted(wanted)))
            .distinct()
        )
        wanted |= set(naming.scalars())
        rows = await session.execute(
            select(VmInstanceVO.host_uuid)
            .join(VmNicVO, VmNicVO.vm_instance_uuid == VmInstanceVO.uuid)
            .join(VmNicSecurityGroupRefVO, VmNicSecurityGroupRefVO.vm_nic_uuid == VmNicVO.uuid)
            .where(
                VmNicSecurityGroupRefVO.security_group_uuid.in_(sorted(wanted)),
                VmInstanceVO.host_uuid.is_not(None),
                VmInstanceVO.state.in_(_ON_HOST),
            )
            .distinct()
        )
        return {h for h in rows.scalars() if h is not None}


async def has_members(ctx: NodeContext, nic_uuids: Iterable[str]) -> bool:
    """Whether any of these NICs is in a security group (else a VM's moves send nothing)."""
    uuids = sorted(set(nic_uuids))
    if not uuids:
        return False
    async with ctx.db.session() as session:
        found = await session.scalar(
            select(VmNicSecurityGroupRefVO.uuid)
            .where(VmNicSecurityGroupRefVO.vm_nic_uuid.in_(uuids))
            .limit(1)
        )
    return found is not None
