"""Where a security group applies: the L3 networks it is attached to and its member NICs.
Each change runs in the group's queue (``sg:<uuid>``, shared with the group's own service)
and reaches the hosts through ``changes.change`` (undone when a host refuses).

NICs about to be deleted (their VM expunged, whatever its state, or the NIC detached)
leave their groups first (``VmNicDeletionExtension``): a stopped member's address is a
peer in the rules of the hosts running the other members, and its foreign key would drop
the membership from the database alone, leaving the address on those hosts for whoever
gets it next."""

from __future__ import annotations

import logging

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from zstackpy.core.bus.message import Reply
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import Service, handles
from zstackpy.services.network.messages import GetL3NetworksMsg
from zstackpy.services.networkservice.access import require_usable
from zstackpy.services.networkservice.candidates import candidate_nics
from zstackpy.services.networkservice.errors import NetworkServiceErr
from zstackpy.services.networkservice.extensions import (
    SECURITY_GROUP,
)
from zstackpy.services.networkservice.messages import (
    GetL3NetworkServicesMsg,
    GetL3NetworkServicesReply,
)
from zstackpy.services.securitygroup.api import (
    APIAddVmNicToSecurityGroupMsg,
    APIAttachSecurityGroupToL3NetworkMsg,
    APIDeleteVmNicFromSecurityGroupMsg,
    APIDetachSecurityGroupFromL3NetworkMsg,
    APIGetCandidateVmNicForSecurityGroupMsg,
    SecurityGroupEvent,
    VmNicsReply,
)
from zstackpy.services.securitygroup.changes import (
    answer,
    change,
    columns,
    new_uuid,
    require_group,
    sg_queue,
)
from zstackpy.services.securitygroup.errors import SecurityGroupErr
from zstackpy.services.securitygroup.messages import (
    SECURITY_GROUP_MEMBER_SERVICE,
    DropSecurityGroupNicsMsg,
)
from zstackpy.services.securitygroup.models import (
    SecurityGroupL3NetworkRefVO,
    VmNicSecurityGroupRefVO,
)
from zstackpy.services.vm.extensions import VmNicsDeletion
from zstackpy.services.vm.models import VmNicVO

log = logging.getLogger(__name__)


class SecurityGroupMemberService(Service):
    name = SECURITY_GROUP_MEMBER_SERVICE

    @handles(APIGetCandidateVmNicForSecurityGroupMsg)
    async def candidates(self, msg: APIGetCandidateVmNicForSecurityGroupMsg) -> VmNicsReply:
        uuid = msg.security_group_uuid
        async with self.ctx.db.session() as session:
            await require_group(session, uuid)
            l3s = (
                await session.execute(
                    select(SecurityGroupL3NetworkRefVO.l3_network_uuid).where(
                        SecurityGroupL3NetworkRefVO.security_group_uuid == uuid
                    )
                )
            ).scalars()
            members = (
                await session.execute(
                    select(VmNicSecurityGroupRefVO.vm_nic_uuid).where(
                        VmNicSecurityGroupRefVO.security_group_uuid == uuid
                    )
                )
            ).scalars()
            l3_uuids, member_uuids = list(l3s), list(members)
        nics = await candidate_nics(self.ctx, msg.require_auth(), l3_uuids, member_uuids)
        return VmNicsReply(inventories=nics)

    # ----- L3 networks ----------------------------------------------------------------------

    @handles(APIAttachSecurityGroupToL3NetworkMsg)
    async def attach_l3(self, msg: APIAttachSecurityGroupToL3NetworkMsg) -> SecurityGroupEvent:
        return await self.ctx.queues.run(sg_queue(msg.security_group_uuid), self._attach_l3, msg)

    async def _attach_l3(self, msg: APIAttachSecurityGroupToL3NetworkMsg) -> SecurityGroupEvent:
        uuid, l3_uuid = msg.security_group_uuid, msg.l3_network_uuid
        await require_usable(self.ctx, msg.require_auth(), [l3_uuid], "L3 network")
        (await self.ctx.bus.call(GetL3NetworksMsg(l3_network_uuids=[l3_uuid]))).raise_if_error()
        services = await self.ctx.bus.request(
            GetL3NetworkServicesMsg(l3_network_uuids=[l3_uuid]), GetL3NetworkServicesReply
        )
        if services.provider_of(l3_uuid, SECURITY_GROUP) is None:
            raise ZError(
                NetworkServiceErr.NOT_ENABLED,
                f"L3 network {l3_uuid} has no SecurityGroup network service: attach one first",
                l3NetworkUuid=l3_uuid,
                networkServiceType=SECURITY_GROUP,
            )
        async with self.ctx.db.session() as session, session.begin():
            await require_group(session, uuid)
            if await self._l3_ref(session, uuid, l3_uuid) is not None:
                raise ZError(
                    SecurityGroupErr.ALREADY_ATTACHED,
                    f"security group {uuid} is already attached to L3 network {l3_uuid}",
                    uuid=uuid,
                    l3NetworkUuid=l3_uuid,
                )
            session.add(
                SecurityGroupL3NetworkRefVO(
                    uuid=new_uuid(), security_group_uuid=uuid, l3_network_uuid=l3_uuid
                )
            )
        return SecurityGroupEvent(
            inventory=await answer(self.ctx, uuid, "updated", msg.require_auth())
        )

    @handles(APIDetachSecurityGroupFromL3NetworkMsg)
    async def detach_l3(self, msg: APIDetachSecurityGroupFromL3NetworkMsg) -> SecurityGroupEvent:
        return await self.ctx.queues.run(sg_queue(msg.security_group_uuid), self._detach_l3, msg)

    async def _detach_l3(self, msg: APIDetachSecurityGroupFromL3NetworkMsg) -> SecurityGroupEvent:
        uuid, l3_uuid = msg.security_group_uuid, msg.l3_network_uuid
        async with self.ctx.db.session() as session:
            await require_group(session, uuid)
            ref = await self._l3_ref(session, uuid, l3_uuid)
            if ref is None:
                raise ZError(
                    SecurityGroupErr.NOT_ATTACHED,
                    f"security group {uuid} is not attached to L3 network {l3_uuid}",
                    uuid=uuid,
                    l3NetworkUuid=l3_uuid,
                )
            saved_ref = columns(ref)
            members = [
                columns(r)
                for r in (
                    await session.execute(
                        select(VmNicSecurityGroupRefVO)
                        .join(VmNicVO, VmNicVO.uuid == VmNicSecurityGroupRefVO.vm_nic_uuid)
                        .where(
                            VmNicSecurityGroupRefVO.security_group_uuid == uuid,
                            VmNicVO.l3_network_uuid == l3_uuid,
                        )
                    )
                ).scalars()
            ]

        async def remove(session: AsyncSession) -> None:
            if members:
                await session.execute(
                    delete(VmNicSecurityGroupRefVO).where(
                        VmNicSecurityGroupRefVO.uuid.in_([m["uuid"] for m in members])
                    )
                )
            await session.execute(
                delete(SecurityGroupL3NetworkRefVO).where(
                    SecurityGroupL3NetworkRefVO.uuid == saved_ref["uuid"]
                )
            )

        async def restore(session: AsyncSession) -> None:
            await session.execute(insert(SecurityGroupL3NetworkRefVO), [saved_ref])
            if members:
                await session.execute(insert(VmNicSecurityGroupRefVO), members)

        await change(self.ctx, [uuid], remove, restore)
        return SecurityGroupEvent(
            inventory=await answer(self.ctx, uuid, "updated", msg.require_auth())
        )

    @staticmethod
    async def _l3_ref(
        session: AsyncSession, uuid: str, l3_uuid: str
    ) -> SecurityGroupL3NetworkRefVO | None:
        return await session.scalar(
            select(SecurityGroupL3NetworkRefVO).where(
                SecurityGroupL3NetworkRefVO.security_group_uuid == uuid,
                SecurityGroupL3NetworkRefVO.l3_network_uuid == l3_uuid,
            )
        )

    # ----- members ----------------------------------------------------------------------------

    @handles(APIAddVmNicToSecurityGroupMsg)
    async def add_nics(self, msg: APIAddVmNicToSecurityGroupMsg) -> SecurityGroupEvent:
        return await self.ctx.queues.run(sg_queue(msg.security_group_uuid), self._add_nics, msg)

    async def _add_nics(self, msg: APIAddVmNicToSecurityGroupMsg) -> SecurityGroupEvent:
        uuid = msg.security_group_uuid
        wanted = list(dict.fromkeys(msg.vm_nic_uuids))
        await require_usable(self.ctx, msg.require_auth(), wanted, "VM NIC")
        async with self.ctx.db.session() as session:
            await require_group(session, uuid)
            nics = {
                n.uuid: n
                for n in (
                    await session.execute(select(VmNicVO).where(VmNicVO.uuid.in_(wanted)))
                ).scalars()
            }
            missing = [n for n in wanted if n not in nics]
            if missing:
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no VM NIC with uuid {', '.join(missing)}",
                    uuids=missing,
                )
            attached = set(
                (
                    await session.execute(
                        select(SecurityGroupL3NetworkRefVO.l3_network_uuid).where(
                            SecurityGroupL3NetworkRefVO.security_group_uuid == uuid
                        )
                    )
                ).scalars()
            )
            outside = sorted(n.uuid for n in nics.values() if n.l3_network_uuid not in attached)
            if outside:
                raise ZError(
                    SecurityGroupErr.L3_NOT_ATTACHED,
                    f"the L3 networks of NICs {', '.join(outside)} are not attached to "
                    f"security group {uuid}",
                    uuid=uuid,
                    vmNicUuids=outside,
                )
            already = set(
                (
                    await session.execute(
                        select(VmNicSecurityGroupRefVO.vm_nic_uuid).where(
                            VmNicSecurityGroupRefVO.security_group_uuid == uuid,
                            VmNicSecurityGroupRefVO.vm_nic_uuid.in_(wanted),
                        )
                    )
                ).scalars()
            )
        rows = [
            {
                "uuid": new_uuid(),
                "vm_nic_uuid": n,
                "security_group_uuid": uuid,
                "vm_instance_uuid": nics[n].vm_instance_uuid,
                "priority": 1,
            }
            for n in wanted
            if n not in already
        ]
        if rows:

            async def add(session: AsyncSession) -> None:
                await session.execute(insert(VmNicSecurityGroupRefVO), rows)

            async def take_back(session: AsyncSession) -> None:
                await session.execute(
                    delete(VmNicSecurityGroupRefVO).where(
                        VmNicSecurityGroupRefVO.uuid.in_([r["uuid"] for r in rows])
                    )
                )

            await change(self.ctx, [uuid], add, take_back)
        return SecurityGroupEvent(
            inventory=await answer(self.ctx, uuid, "updated", msg.require_auth())
        )

    @handles(APIDeleteVmNicFromSecurityGroupMsg)
    async def delete_nics(self, msg: APIDeleteVmNicFromSecurityGroupMsg) -> SecurityGroupEvent:
        return await self.ctx.queues.run(sg_queue(msg.security_group_uuid), self._delete_nics, msg)

    async def _delete_nics(self, msg: APIDeleteVmNicFromSecurityGroupMsg) -> SecurityGroupEvent:
        uuid = msg.security_group_uuid
        async with self.ctx.db.session() as session:
            await require_group(session, uuid)
        await self._leave(uuid, msg.vm_nic_uuids)
        return SecurityGroupEvent(
            inventory=await answer(self.ctx, uuid, "updated", msg.require_auth())
        )

    async def _leave(self, uuid: str, nic_uuids: list[str]) -> None:
        """In the group's queue: the NICs leave it, on the hosts too (undone if one refuses)."""
        async with self.ctx.db.session() as session:
            saved = [
                columns(r)
                for r in (
                    await session.execute(
                        select(VmNicSecurityGroupRefVO).where(
                            VmNicSecurityGroupRefVO.security_group_uuid == uuid,
                            VmNicSecurityGroupRefVO.vm_nic_uuid.in_(nic_uuids),
                        )
                    )
                ).scalars()
            ]
        if saved:

            async def remove(session: AsyncSession) -> None:
                await session.execute(
                    delete(VmNicSecurityGroupRefVO).where(
                        VmNicSecurityGroupRefVO.uuid.in_([r["uuid"] for r in saved])
                    )
                )

            async def restore(session: AsyncSession) -> None:
                await session.execute(insert(VmNicSecurityGroupRefVO), saved)

            await change(self.ctx, [uuid], remove, restore)

    # ----- NICs being deleted -----------------------------------------------------------------

    async def vm_nics_deleting(self, event: VmNicsDeletion) -> None:
        """VmNicDeletionExtension, in the VM's queue: each group the NICs are in lets them
        go in its own queue; a host refusing fails the expunge or detach (a group that
        already let them go keeps them out: the retry finds them gone there)."""
        async with self.ctx.db.session() as session:
            groups = sorted(
                set(
                    (
                        await session.execute(
                            select(VmNicSecurityGroupRefVO.security_group_uuid).where(
                                VmNicSecurityGroupRefVO.vm_nic_uuid.in_(list(event.nic_uuids))
                            )
                        )
                    ).scalars()
                )
            )
        if not groups:
            return
        replies = await self.ctx.bus.call_many(
            [
                DropSecurityGroupNicsMsg(security_group_uuid=g, vm_nic_uuids=list(event.nic_uuids))
                for g in groups
            ],
            parallelism=8,
        )
        for reply in replies:
            reply.raise_if_error()

    @handles(DropSecurityGroupNicsMsg)
    async def drop_nics(self, msg: DropSecurityGroupNicsMsg) -> Reply:
        await self.ctx.queues.run(
            sg_queue(msg.security_group_uuid),
            self._leave,
            msg.security_group_uuid,
            msg.vm_nic_uuids,
        )
        return Reply()
