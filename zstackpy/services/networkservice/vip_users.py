"""What the services of resources that use a VIP and go to one VM NIC share (EIPs,
port-forwarding rules): attach, detach, state, update, delete and the cascade from the VIP.

Every change of a resource runs in its queue (``<queue_kind>:<uuid>``) on its owner node.
Attached to a NIC whose VM is on a host, an enabled resource on an enabled VIP is on that
host or on the NIC's router: the provider serving the service on the NIC's L3 network puts
it there and takes it off (the subclass's ``apply_on`` / ``revoke_on``, through the provider's
backend); providers follow the VM themselves when it starts, stops or migrates. What a
host or router refuses is undone: the resource stays as it was and the API answers the
refusal. A host that is not Connected refuses nothing: its reconnect sends it its tables.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import select, update

from zstackpy.api.messages import AuthContext, Inventory
from zstackpy.core.bus.message import NeedReplyMessage
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.host.messages import HostErr
from zstackpy.services.networkservice.access import require_usable
from zstackpy.services.networkservice.backends import ProviderBackend
from zstackpy.services.networkservice.nics import NicPlace, nic_place
from zstackpy.services.resource_service import ResourceService
from zstackpy.services.vip.extensions import VipStateChange
from zstackpy.services.vip.messages import VIP_TYPE, ReleaseVipMsg
from zstackpy.services.vip.models import VipNetworkServicesRefVO, VipVO

log = logging.getLogger(__name__)

ENABLED, DISABLED = "Enabled", "Disabled"

B = TypeVar("B", bound=ProviderBackend)
R = TypeVar("R")


async def each_or_none(
    ctx: NodeContext, forth: Sequence[NeedReplyMessage], back: Sequence[NeedReplyMessage]
) -> None:
    """Call every message of ``forth`` (8 at a time); when one fails, call ``back[i]``
    for each ``forth[i]`` that succeeded (failures logged) and raise the first failure."""
    replies = await ctx.bus.call_many(forth, parallelism=8)
    failed = [r for r in replies if not r.success]
    if not failed:
        return
    for undo, reply in zip(back, replies, strict=True):
        if reply.success:
            undone = await ctx.bus.call(undo)
            if not undone.success:
                log.warning("undoing %s failed: %s", undo.wire_type(), undone.error)
    failed[0].raise_if_error()


@dataclass(frozen=True, slots=True)
class NicErrs:
    """A service's codes for attaching to and detaching from a NIC."""

    already_attached: str  # the resource is on a NIC already
    same_network: str  # the NIC is on the VIP's own L3 network
    not_attached: str  # a detach of a resource on no NIC


class VipUserService(ResourceService, Generic[B]):
    """Base of the EIP and port-forwarding services. ``model`` is the resource's row, with
    ``vip_uuid``, ``vm_nic_uuid``, ``guest_ip`` and ``state``. Subclasses set the
    ClassVars, find their provider's backend (``backend``), put a resource on its NIC's
    host or router and take it off (``apply_on``, ``revoke_on``), and name the message
    that deletes one in its VIP's cascade (``delete_msg``)."""

    queue_kind: ClassVar[str]  # "eip", "pf"
    errs: ClassVar[NicErrs]

    def queue(self, uuid: str) -> QueueKey:
        return QueueKey(self.queue_kind, uuid)

    # ----- hooks -------------------------------------------------------------------------

    async def backend(self, l3_uuid: str) -> B:
        """The backend of the provider serving the service on ``l3_uuid`` (NS.1005 when
        none does)."""
        raise NotImplementedError

    async def apply_on(self, backend: B, uuid: str, place: NicPlace) -> None:
        """Put the attached resource on the NIC's host (or router); raise when it refuses."""
        raise NotImplementedError

    async def revoke_on(self, backend: B, uuid: str, place: NicPlace) -> None:
        """Take it off; succeeds when it is not there."""
        raise NotImplementedError

    def delete_msg(self, uuid: str) -> NeedReplyMessage:
        """The message deleting the resource in its VIP's cascade (handled by
        ``delete_cascaded``)."""
        raise NotImplementedError

    def vip_state_msg(self, uuid: str, vip_enabled: bool) -> NeedReplyMessage:
        """The message putting the resource on (or taking it off) the data plane as its
        VIP's state changes (handled by ``follow_vip_queued``)."""
        raise NotImplementedError

    async def check_attach(self, row: Any, nic_uuid: str) -> None:
        """Refuse an attach beyond the shared checks (an EIP: the NIC has one)."""

    # ----- update, delete ----------------------------------------------------------------

    async def update_names(self, uuid: str, msg: BaseModel, auth: AuthContext) -> Inventory:
        """Update<Resource>: its name and description, nothing else."""

        async def run() -> Inventory:
            changes = msg.model_dump(
                include={"name", "description"}, exclude_none=True, by_alias=False
            )
            await self.update_fields(uuid, changes)
            return await self.answer(uuid, "updated", auth)

        return await self.ctx.queues.run(self.queue(uuid), run)

    async def create_queued(
        self, uuid: str, vip_uuid: str, create: Callable[[], Awaitable[R]]
    ) -> R:
        """Run Create<Resource> in the resource's queue. One that fails removes its row
        there (``forget``); its use of the VIP ends after the queue, unless a resource
        with this uuid exists (a repeated create: the use is that resource's)."""
        try:
            return await self.ctx.queues.run(self.queue(uuid), create)
        except BaseException:
            async with self.ctx.db.session() as session:
                used = await session.get(VipNetworkServicesRefVO, uuid) is not None
                kept = await session.get(self.model, uuid) is not None
            if used and not kept:
                await self.release_vip(vip_uuid, uuid)
            raise

    async def delete_queued(self, uuid: str, auth: AuthContext) -> None:
        """Delete<Resource>: off its host first, then the row; its use of the VIP ends
        after the queue. A job in the resource's queue never waits for the VIP's:
        ChangeVipState and DeleteVip hold the VIP's while they wait for this one."""
        vip_uuid = await self.ctx.queues.run(self.queue(uuid), self._delete, uuid, auth)
        await self.release_vip(vip_uuid, uuid)

    async def delete_cascaded(self, uuid: str) -> None:
        """The delete of the VIP's cascade: the VIP is not released (its delete holds its
        queue, and it is going anyway); a resource already gone is fine."""

        async def run() -> None:
            async with self.ctx.db.session() as session:
                if await session.get(self.model, uuid) is None:
                    return
            await self._delete(uuid, None)

        await self.ctx.queues.run(self.queue(uuid), run)

    async def _delete(self, uuid: str, auth: AuthContext | None) -> str:
        """Answers the VIP the resource used."""
        async with self.ctx.db.session() as session:
            row = await self.require(session, uuid)
        if row.vm_nic_uuid is not None:
            await self._detach(row)
        await self.remove([uuid], auth)
        return str(row.vip_uuid)

    async def release_vip(self, vip_uuid: str, uuid: str) -> None:
        reply = await self.ctx.bus.call(ReleaseVipMsg(vip_uuid=vip_uuid, service_uuid=uuid))
        if not reply.success:
            log.warning(
                "%s %s: releasing VIP %s failed: %s", self.noun, uuid, vip_uuid, reply.error
            )

    async def forget(self, uuid: str) -> None:
        """Undo a create in its queue: the row, if made (``create_queued`` ends the use
        of the VIP)."""
        try:
            async with self.ctx.db.session() as session:
                made = await session.get(self.model, uuid) is not None
            if made:
                await self.remove([uuid], None)
        except ZError as exc:
            log.warning("%s %s: undoing its create failed: %s", self.noun, uuid, exc)

    # ----- attach, detach ----------------------------------------------------------------

    async def attach_queued(self, uuid: str, nic_uuid: str, auth: AuthContext) -> Inventory:
        """Attach<Resource>: to a NIC the caller may use."""

        async def run() -> Inventory:
            await require_usable(self.ctx, auth, [nic_uuid], "VM NIC")
            await self.attach_nic(uuid, nic_uuid)
            return await self.answer(uuid, "updated", auth)

        return await self.ctx.queues.run(self.queue(uuid), run)

    async def attach_nic(self, uuid: str, nic_uuid: str) -> None:
        """In the resource's queue: the row names the NIC, then an enabled resource goes
        on the NIC's host; a refusal there leaves it detached."""
        async with self.ctx.db.session() as session:
            row = await self.require(session, uuid)
            vip = await session.get(VipVO, row.vip_uuid)
        if row.vm_nic_uuid is not None:
            raise ZError(
                self.errs.already_attached,
                f"{self.noun} {uuid} is attached to NIC {row.vm_nic_uuid}: detach it first",
                uuid=uuid,
                vmNicUuid=row.vm_nic_uuid,
            )
        await self.check_attach(row, nic_uuid)
        place = await nic_place(self.ctx, nic_uuid)
        if vip is not None and vip.l3_network_uuid == place.nic.l3_network_uuid:
            raise ZError(
                self.errs.same_network,
                f"NIC {nic_uuid} is on the VIP's own L3 network {vip.l3_network_uuid}",
                vmNicUuid=nic_uuid,
                l3NetworkUuid=vip.l3_network_uuid,
            )
        backend = await self.backend(place.nic.l3_network_uuid)
        await self._set_nic(uuid, nic_uuid, place.nic.ip)
        try:
            await self._apply(uuid, place, backend)
        except BaseException:
            await self._set_nic(uuid, None, None)
            raise

    async def _apply(self, uuid: str, place: NicPlace, backend: B) -> None:
        """Put the resource on the NIC's host (none when the VM runs nowhere, nothing
        when the database keeps it off: Disabled, or its VIP Disabled)."""
        if place.host is None or not await self._on_data_plane(uuid):
            return
        try:
            await self.apply_on(backend, uuid, place)
        except ZError as exc:
            if exc.code != HostErr.WRONG_STATE:
                raise
            # The host is not Connected: its reconnect puts the resource there.

    async def detach_queued(self, uuid: str, auth: AuthContext) -> Inventory:
        """Detach<Resource>: off the host first; a host that refuses leaves it attached."""

        async def run() -> Inventory:
            async with self.ctx.db.session() as session:
                row = await self.require(session, uuid)
            if row.vm_nic_uuid is None:
                raise ZError(
                    self.errs.not_attached, f"{self.noun} {uuid} is not attached", uuid=uuid
                )
            await self._detach(row)
            return await self.answer(uuid, "updated", auth)

        return await self.ctx.queues.run(self.queue(uuid), run)

    async def _detach(self, row: Any) -> None:
        """Revoke on the host first: a host that refuses leaves the resource attached."""
        await self._revoke(row)
        await self._set_nic(row.uuid, None, None)

    async def _revoke(self, row: Any) -> None:
        """Take the attached resource off its NIC's host, if the database puts it there
        (call it before the row or the VIP changes: what the provider is given is read
        from the database)."""
        assert row.vm_nic_uuid is not None
        if not await self._on_data_plane(row.uuid):
            return
        try:
            place = await nic_place(self.ctx, row.vm_nic_uuid)
        except ZError as exc:
            if exc.code != SysErr.RESOURCE_NOT_FOUND:
                raise
            return  # the NIC is gone: nothing holds the resource any more
        if place.host is None:
            return
        backend = await self.backend(place.nic.l3_network_uuid)
        try:
            await self.revoke_on(backend, row.uuid, place)
        except ZError as exc:
            # Not Connected: its reconnect sends the whole table, without this one.
            if exc.code != HostErr.WRONG_STATE:
                raise

    def on_data_plane(self) -> tuple[Any, ...]:
        """Where-clauses of the resources the database puts on hosts and routers, what
        providers are given: attached, Enabled, on an Enabled VIP (a query joining
        VipVO)."""
        table: Any = self.model
        return (table.vm_nic_uuid.is_not(None), table.state == ENABLED, VipVO.state == ENABLED)

    async def _on_data_plane(self, uuid: str) -> bool:
        table: Any = self.model
        async with self.ctx.db.session() as session:
            found = await session.scalar(
                select(table.uuid)
                .join(VipVO, VipVO.uuid == table.vip_uuid)
                .where(table.uuid == uuid, *self.on_data_plane())
            )
        return found is not None

    async def _set_nic(self, uuid: str, nic_uuid: str | None, guest_ip: str | None) -> None:
        table: Any = self.model
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                update(table)
                .where(table.uuid == uuid)
                .values(vm_nic_uuid=nic_uuid, guest_ip=guest_ip)
            )

    # ----- state -------------------------------------------------------------------------

    async def change_state_queued(self, uuid: str, enable: bool, auth: AuthContext) -> Inventory:
        """Change<Resource>State."""

        async def run() -> Inventory:
            await self._change_state(uuid, enable)
            return await self.answer(uuid, "updated", auth)

        return await self.ctx.queues.run(self.queue(uuid), run)

    async def _change_state(self, uuid: str, enable: bool) -> None:
        """A disabled resource keeps its NIC but leaves the host (revoked before the row
        changes: a host that refuses leaves it Enabled); enabling puts it back, and a host
        that refuses leaves it Disabled."""
        async with self.ctx.db.session() as session:
            row = await self.require(session, uuid)
        wanted = ENABLED if enable else DISABLED
        if row.state == wanted:
            return
        if not enable:
            if row.vm_nic_uuid is not None:
                await self._revoke(row)
            await self.update_fields(uuid, {"state": wanted})
            return
        await self.update_fields(uuid, {"state": wanted})
        if row.vm_nic_uuid is None:
            return
        try:
            await self._put_back(uuid, row.vm_nic_uuid)
        except BaseException:
            await self.update_fields(uuid, {"state": DISABLED})
            raise

    async def _put_back(self, uuid: str, nic_uuid: str) -> None:
        """Put the attached resource on its NIC's host, as the database has it now (once
        the row or its VIP says Enabled again)."""
        try:
            place = await nic_place(self.ctx, nic_uuid)
        except ZError as exc:
            if exc.code != SysErr.RESOURCE_NOT_FOUND:
                raise
            return  # the NIC is gone: the resource was detached from it
        await self._apply(uuid, place, await self.backend(place.nic.l3_network_uuid))

    # ----- VipStateExtension: the resources follow their VIP's state --------------------

    async def follow_vip_state(self, change: VipStateChange) -> None:
        table: Any = self.model
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(table.uuid).where(
                    table.vip_uuid == change.vip_uuid,
                    table.vm_nic_uuid.is_not(None),
                    table.state == ENABLED,
                )
            )
            uuids = sorted(rows.scalars())
        await each_or_none(
            self.ctx,
            [self.vip_state_msg(u, change.enabled) for u in uuids],
            [self.vip_state_msg(u, not change.enabled) for u in uuids],
        )

    async def follow_vip_queued(self, uuid: str, vip_enabled: bool) -> None:
        """In the resource's queue: off its host while the VIP's row still says Enabled,
        or back on once it says Enabled again."""

        async def run() -> None:
            async with self.ctx.db.session() as session:
                row: Any = await session.get(self.model, uuid)
            if row is None or row.vm_nic_uuid is None:
                return
            if vip_enabled:
                await self._put_back(uuid, row.vm_nic_uuid)
            else:
                await self._revoke(row)

        await self.ctx.queues.run(self.queue(uuid), run)

    # ----- CascadeParticipant: the resources go with their VIP ---------------------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        if parent_type != VIP_TYPE:
            return None
        table: Any = self.model
        async with self.ctx.db.session() as session:
            rows = await session.execute(select(table.uuid).where(table.vip_uuid.in_(parent_uuids)))
            return CascadeChildren(self.resource_type, tuple(rows.scalars()))

    async def cascade_check(self, children: CascadeChildren) -> None:
        return None

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        replies = await self.ctx.bus.call_many(
            [self.delete_msg(u) for u in children.uuids], parallelism=8
        )
        for reply in replies:
            reply.raise_if_error()
