"""Load-balancer handlers: every change of a load balancer (its listeners and backends
included) runs in its queue (``load-balancer:<uuid>``). A change that alters what its
backend holds is sent there first, computed from the database and the change; only when
the backend took it is the database changed, so a refusal leaves everything as it was.

The VIP is acquired for ``LoadBalancer`` (the load balancer's alone) and released with
it. What follows VIPs and VMs is ``cascade.py``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import delete, select

from zstackpy.api.messages import APIMessage, APIReply, AuthContext
from zstackpy.api.ownership import add_resource, remove_resources
from zstackpy.core.bus.message import Reply
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.loadbalancer.api import (
    APIAddVmNicToLoadBalancerMsg,
    APICreateLoadBalancerListenerMsg,
    APICreateLoadBalancerMsg,
    APIDeleteLoadBalancerListenerMsg,
    APIDeleteLoadBalancerMsg,
    APIRemoveVmNicFromLoadBalancerMsg,
    LoadBalancerEvent,
    LoadBalancerListenerEvent,
)
from zstackpy.services.loadbalancer.extensions import LoadBalancerBackend
from zstackpy.services.loadbalancer.messages import (
    LISTENER_TYPE,
    LOAD_BALANCER_SERVICE,
    LOAD_BALANCER_TYPE,
    LOAD_BALANCER_USE,
    ApplyVipStateToLoadBalancerMsg,
    DeleteLoadBalancerMsg,
    DropLoadBalancerNicsMsg,
    DropNicsFromLoadBalancerMsg,
    GetL3LoadBalancersMsg,
    GetL3LoadBalancersReply,
    LoadBalancerErr,
    LoadBalancerInventory,
    LoadBalancerTO,
)
from zstackpy.services.loadbalancer.models import (
    LoadBalancerListenerVmNicRefVO,
    LoadBalancerListenerVO,
    LoadBalancerVO,
)
from zstackpy.services.loadbalancer.query import listener_inventory, load_balancer_inventory
from zstackpy.services.loadbalancer.state import applied, current, has_backends, joining_nics
from zstackpy.services.networkservice.access import require_usable
from zstackpy.services.networkservice.backends import backend_for
from zstackpy.services.networkservice.extensions import LOAD_BALANCER
from zstackpy.services.resource_service import ResourceService
from zstackpy.services.vip.messages import (
    AcquireVipMsg,
    AcquireVipReply,
    ReleaseVipMsg,
)
from zstackpy.services.vm.models import VmNicVO

log = logging.getLogger(__name__)
R = TypeVar("R", bound=APIReply)


def lb_queue(uuid: str) -> QueueKey:
    return QueueKey("load-balancer", uuid)


class LoadBalancerService(ResourceService):
    name = LOAD_BALANCER_SERVICE
    model = LoadBalancerVO
    inventory = LoadBalancerInventory
    resource_type = LOAD_BALANCER_TYPE
    noun = "load balancer"

    async def _at_owner(
        self,
        lb_uuid: str,
        msg: APIMessage,
        reply_type: type[R],
        run: Callable[[], Awaitable[R]],
    ) -> R:
        """Run ``run`` in the load balancer's queue on its owner node: a request about one
        of its listeners came to whichever node took it, and is sent on to the owner."""
        owner = self.ctx.ring.owner(lb_uuid)
        if owner == self.ctx.node_uuid:
            return await self.ctx.queues.run(lb_queue(lb_uuid), run)
        return await self.ctx.bus.request(
            msg, reply_type, node=owner, service=LOAD_BALANCER_SERVICE, timeout=msg.api_timeout_s
        )

    async def _backend(self, l3_uuid: str) -> LoadBalancerBackend:
        return await backend_for(
            self.ctx, l3_uuid, LOAD_BALANCER, LoadBalancerBackend, "load balancer"
        )

    async def _apply(self, before: LoadBalancerTO, after: LoadBalancerTO, l3_uuid: str) -> None:
        """What the backend of ``l3_uuid`` holds of the load balancer becomes ``after``
        (nothing, while its VIP is Disabled: the database alone changes)."""
        if not after.vip_enabled:
            return
        backend = await self._backend(l3_uuid)
        if has_backends(after):
            await backend.refresh_load_balancer(l3_uuid, applied(after))
        elif has_backends(before):
            await backend.delete_load_balancer(l3_uuid, applied(before))

    async def _answer(self, uuid: str, auth: AuthContext | None) -> LoadBalancerInventory:
        inventory = await load_balancer_inventory(self.ctx, uuid)
        if auth is not None:
            await self._publish(
                uuid, "updated", auth, inventory.model_dump(mode="json", by_alias=True)
            )
        return inventory

    # ----- load balancers ----------------------------------------------------------------

    @handles(APICreateLoadBalancerMsg)
    async def create(self, msg: APICreateLoadBalancerMsg) -> LoadBalancerEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.ctx.queues.run(lb_queue(msg.resource_uuid), self._create, msg)

    async def _create(self, msg: APICreateLoadBalancerMsg) -> LoadBalancerEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        await require_usable(self.ctx, auth, [msg.vip_uuid], "VIP")
        async with self.ctx.db.session() as session:
            await self.refuse_duplicate(session, uuid)
        await self.ctx.bus.request(
            AcquireVipMsg(vip_uuid=msg.vip_uuid, use_for=LOAD_BALANCER_USE, service_uuid=uuid),
            AcquireVipReply,
        )
        try:
            async with self.ctx.db.session() as session, session.begin():
                session.add(
                    LoadBalancerVO(
                        uuid=uuid,
                        name=msg.name,
                        description=msg.description,
                        vip_uuid=msg.vip_uuid,
                        state="Enabled",
                        type=msg.type,
                    )
                )
                add_resource(
                    session, uuid=uuid, resource_type=LOAD_BALANCER_TYPE, name=msg.name, auth=auth
                )
        except BaseException:
            await self._release_vip(msg.vip_uuid, uuid)
            raise
        inventory = await load_balancer_inventory(self.ctx, uuid)
        await self._publish(uuid, "created", auth, inventory.model_dump(mode="json", by_alias=True))
        return LoadBalancerEvent(inventory=inventory)

    async def _release_vip(self, vip_uuid: str, uuid: str) -> None:
        reply = await self.ctx.bus.call(ReleaseVipMsg(vip_uuid=vip_uuid, service_uuid=uuid))
        if not reply.success:
            log.warning("load balancer %s: VIP %s not released: %s", uuid, vip_uuid, reply.error)

    @handles(APIDeleteLoadBalancerMsg)
    async def delete_api(self, msg: APIDeleteLoadBalancerMsg) -> LoadBalancerEvent:
        auth = msg.require_auth()
        vip_uuid = await self.ctx.queues.run(lb_queue(msg.uuid), self._delete, msg.uuid, auth)
        # After the queue: a job in it never waits for the VIP's queue, which
        # ChangeVipState and DeleteVip hold while they wait for this one.
        await self._release_vip(vip_uuid, msg.uuid)
        return LoadBalancerEvent()

    @handles(DeleteLoadBalancerMsg)
    async def delete_internal(self, msg: DeleteLoadBalancerMsg) -> Reply:
        async def run() -> None:
            async with self.ctx.db.session() as session:
                if await session.get(LoadBalancerVO, msg.uuid) is None:
                    return
            await self._delete(msg.uuid, None)

        await self.ctx.queues.run(lb_queue(msg.uuid), run)
        return Reply()

    @handles(ApplyVipStateToLoadBalancerMsg)
    async def follow_vip(self, msg: ApplyVipStateToLoadBalancerMsg) -> Reply:
        async def run() -> None:
            """Off its router while the VIP's row still says Enabled, back on once it says
            Enabled again (the load balancer as the database holds it)."""
            async with self.ctx.db.session() as session:
                if await session.get(LoadBalancerVO, msg.uuid) is None:
                    return
            held, l3_of = await current(self.ctx, msg.uuid)
            if not has_backends(held):
                return
            none = held.model_copy(update={"listeners": []})
            if msg.vip_enabled:
                await self._apply(none, held, _one(l3_of))
            else:
                await self._apply(held, none, _one(l3_of))

        await self.ctx.queues.run(lb_queue(msg.uuid), run)
        return Reply()

    async def _delete(self, uuid: str, auth: AuthContext | None) -> str:
        """Off its backend first: a backend that refuses leaves the load balancer. Answers
        the VIP it used."""
        before, l3_of = await current(self.ctx, uuid)
        if has_backends(before):
            await self._apply(before, before.model_copy(update={"listeners": []}), _one(l3_of))
        async with self.ctx.db.session() as session:
            row: LoadBalancerVO = await self.require(session, uuid)
            listeners = list(
                (
                    await session.execute(
                        select(LoadBalancerListenerVO.uuid).where(
                            LoadBalancerListenerVO.load_balancer_uuid == uuid
                        )
                    )
                ).scalars()
            )
        async with self.ctx.db.session() as session, session.begin():
            # Their rows go with the load balancer's (foreign keys); their records here.
            await remove_resources(session, listeners)
        await self.remove([uuid], auth)
        return row.vip_uuid

    # ----- listeners ---------------------------------------------------------------------

    @handles(APICreateLoadBalancerListenerMsg)
    async def create_listener(
        self, msg: APICreateLoadBalancerListenerMsg
    ) -> LoadBalancerListenerEvent:
        return await self.ctx.queues.run(
            lb_queue(msg.load_balancer_uuid), self._create_listener, msg
        )

    async def _create_listener(
        self, msg: APICreateLoadBalancerListenerMsg
    ) -> LoadBalancerListenerEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        before, _l3 = await current(self.ctx, msg.load_balancer_uuid)
        for li in before.listeners:
            if (li.protocol, li.load_balancer_port) == (msg.protocol, msg.load_balancer_port):
                raise ZError(
                    LoadBalancerErr.PORT_TAKEN,
                    f"listener {li.listener_uuid} of load balancer {before.lb_uuid} has "
                    f"{msg.protocol} port {msg.load_balancer_port}",
                    listenerUuid=li.listener_uuid,
                    loadBalancerPort=msg.load_balancer_port,
                )
        async with self.ctx.db.session() as session, session.begin():
            if await session.get(LoadBalancerListenerVO, uuid) is not None:
                raise ZError(SysErr.CREATE_RESOURCE, f"a listener with uuid {uuid} exists")
            # Without backends yet: nothing for the backend to hold.
            session.add(
                LoadBalancerListenerVO(
                    uuid=uuid,
                    load_balancer_uuid=msg.load_balancer_uuid,
                    name=msg.name,
                    description=msg.description,
                    protocol=msg.protocol,
                    load_balancer_port=msg.load_balancer_port,
                    instance_port=msg.instance_port or msg.load_balancer_port,
                )
            )
            add_resource(session, uuid=uuid, resource_type=LISTENER_TYPE, name=msg.name, auth=auth)
        await self._answer(msg.load_balancer_uuid, auth)
        return LoadBalancerListenerEvent(inventory=await listener_inventory(self.ctx, uuid))

    async def _listener(self, uuid: str) -> LoadBalancerListenerVO:
        async with self.ctx.db.session() as session:
            row = await session.get(LoadBalancerListenerVO, uuid)
        if row is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no listener with uuid {uuid}", uuid=uuid)
        return row

    @handles(APIDeleteLoadBalancerListenerMsg)
    async def delete_listener(self, msg: APIDeleteLoadBalancerListenerMsg) -> LoadBalancerEvent:
        lb_uuid = (await self._listener(msg.uuid)).load_balancer_uuid

        async def run() -> LoadBalancerEvent:
            auth = msg.require_auth()
            before, l3_of = await current(self.ctx, lb_uuid)
            if not any(li.listener_uuid == msg.uuid for li in before.listeners):
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND, f"no listener with uuid {msg.uuid}", uuid=msg.uuid
                )
            after = before.model_copy(
                update={
                    "listeners": [li for li in before.listeners if li.listener_uuid != msg.uuid]
                }
            )
            if has_backends(before):
                await self._apply(before, after, _one(l3_of))
            async with self.ctx.db.session() as session, session.begin():
                await session.execute(
                    delete(LoadBalancerListenerVO).where(LoadBalancerListenerVO.uuid == msg.uuid)
                )
                await remove_resources(session, [msg.uuid])
            return LoadBalancerEvent(inventory=await self._answer(lb_uuid, auth))

        return await self._at_owner(lb_uuid, msg, LoadBalancerEvent, run)

    # ----- backends ----------------------------------------------------------------------

    @handles(APIAddVmNicToLoadBalancerMsg)
    async def add_nics(self, msg: APIAddVmNicToLoadBalancerMsg) -> LoadBalancerListenerEvent:
        lb_uuid = (await self._listener(msg.listener_uuid)).load_balancer_uuid

        async def run() -> LoadBalancerListenerEvent:
            auth = msg.require_auth()
            await require_usable(self.ctx, auth, msg.vm_nic_uuids, "VM NIC")
            before, l3_of = await current(self.ctx, lb_uuid)
            listener = next(
                (li for li in before.listeners if li.listener_uuid == msg.listener_uuid), None
            )
            if listener is None:  # deleted while this request waited
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no listener with uuid {msg.listener_uuid}",
                    uuid=msg.listener_uuid,
                )
            joining, l3_uuid = await joining_nics(self.ctx, before, l3_of, msg.vm_nic_uuids)
            held = {n.uuid for n in listener.nics}
            new = [n for n in joining if n.uuid not in held]
            if new:
                after = before.model_copy(deep=True)
                for li in after.listeners:
                    if li.listener_uuid == msg.listener_uuid:
                        li.nics.extend(new)
                await self._apply(before, after, l3_uuid)
                async with self.ctx.db.session() as session, session.begin():
                    for nic in new:
                        session.add(
                            LoadBalancerListenerVmNicRefVO(
                                listener_uuid=msg.listener_uuid, vm_nic_uuid=nic.uuid
                            )
                        )
            await self._answer(lb_uuid, auth)
            inventory = await listener_inventory(self.ctx, msg.listener_uuid)
            return LoadBalancerListenerEvent(inventory=inventory)

        return await self._at_owner(lb_uuid, msg, LoadBalancerListenerEvent, run)

    @handles(APIRemoveVmNicFromLoadBalancerMsg)
    async def remove_nics(self, msg: APIRemoveVmNicFromLoadBalancerMsg) -> LoadBalancerEvent:
        lb_uuid = (await self._listener(msg.listener_uuid)).load_balancer_uuid

        async def run() -> LoadBalancerEvent:
            auth = msg.require_auth()
            await self._drop(lb_uuid, set(msg.vm_nic_uuids), msg.listener_uuid)
            return LoadBalancerEvent(inventory=await self._answer(lb_uuid, auth))

        return await self._at_owner(lb_uuid, msg, LoadBalancerEvent, run)

    async def _drop(self, lb_uuid: str, nic_uuids: set[str], listener_uuid: str | None) -> None:
        """The NICs leave the listener (every listener when None): off the backend first."""
        before, l3_of = await current(self.ctx, lb_uuid)
        after = before.model_copy(deep=True)
        for li in after.listeners:
            if listener_uuid is None or li.listener_uuid == listener_uuid:
                li.nics = [n for n in li.nics if n.uuid not in nic_uuids]
        if after == before:
            return
        await self._apply(before, after, _one(l3_of))
        async with self.ctx.db.session() as session, session.begin():
            listeners = [
                li.listener_uuid
                for li in before.listeners
                if listener_uuid is None or li.listener_uuid == listener_uuid
            ]
            await session.execute(
                delete(LoadBalancerListenerVmNicRefVO).where(
                    LoadBalancerListenerVmNicRefVO.vm_nic_uuid.in_(sorted(nic_uuids)),
                    LoadBalancerListenerVmNicRefVO.listener_uuid.in_(listeners),
                )
            )

    @handles(DropLoadBalancerNicsMsg)
    async def drop_nics(self, msg: DropLoadBalancerNicsMsg) -> Reply:
        nics = set(msg.vm_nic_uuids)
        async with self.ctx.db.session() as session:
            lbs = set(
                (
                    await session.execute(
                        select(LoadBalancerListenerVO.load_balancer_uuid)
                        .join(
                            LoadBalancerListenerVmNicRefVO,
                            LoadBalancerListenerVmNicRefVO.listener_uuid
                            == LoadBalancerListenerVO.uuid,
                        )
                        .where(LoadBalancerListenerVmNicRefVO.vm_nic_uuid.in_(sorted(nics)))
                    )
                ).scalars()
            )
        replies = await self.ctx.bus.call_many(
            [
                DropNicsFromLoadBalancerMsg(load_balancer_uuid=lb, vm_nic_uuids=sorted(nics))
                for lb in sorted(lbs)
            ],
            parallelism=8,
        )
        for reply in replies:
            reply.raise_if_error()
        return Reply()

    @handles(DropNicsFromLoadBalancerMsg)
    async def drop_nics_from(self, msg: DropNicsFromLoadBalancerMsg) -> Reply:
        uuid = msg.load_balancer_uuid
        await self.ctx.queues.run(lb_queue(uuid), self._drop, uuid, set(msg.vm_nic_uuids), None)
        return Reply()

    @handles(GetL3LoadBalancersMsg)
    async def l3_load_balancers(self, msg: GetL3LoadBalancersMsg) -> GetL3LoadBalancersReply:
        async with self.ctx.db.session() as session:
            lbs = set(
                (
                    await session.execute(
                        select(LoadBalancerListenerVO.load_balancer_uuid)
                        .join(
                            LoadBalancerListenerVmNicRefVO,
                            LoadBalancerListenerVmNicRefVO.listener_uuid
                            == LoadBalancerListenerVO.uuid,
                        )
                        .join(VmNicVO, VmNicVO.uuid == LoadBalancerListenerVmNicRefVO.vm_nic_uuid)
                        .where(VmNicVO.l3_network_uuid == msg.l3_network_uuid)
                    )
                ).scalars()
            )
        found = [(await current(self.ctx, uuid))[0] for uuid in sorted(lbs)]
        return GetL3LoadBalancersReply(
            load_balancers=[applied(to) for to in found if to.vip_enabled]
        )


def _one(l3_of: dict[str, str]) -> str:
    """The L3 network of a load balancer's backends (they are all on one)."""
    networks = sorted(set(l3_of.values()))
    if not networks:
        raise ZError(SysErr.INTERNAL, "a load balancer with backends on no L3 network")
    return networks[0]
