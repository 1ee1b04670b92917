"""L2 network handlers: every change of an L2 network runs in its work queue (``l2:<uuid>``).

L2 networks belong to zones (a zone's delete deletes them, after its clusters) and are
attached to clusters (a cluster's delete detaches them). This service is also the network
domain's HostConnectExtension (bridges on connecting hosts) and HostAllocatorFilter.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from zstackpy.api.messages import AuthContext, Inventory
from zstackpy.api.ownership import add_resource, may_use
from zstackpy.core.bus.message import NeedReplyMessage, Reply
from zstackpy.core.cascade import CascadeChildren, DeleteMode
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import handles
from zstackpy.services.cluster.models import ClusterVO
from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.host.messages import AllocateHostMsg, HostCandidate
from zstackpy.services.network.errors import L2Err
from zstackpy.services.network.inventories import L2NetworkInventory, l2_inventory
from zstackpy.services.network.l2.api import (
    APIAttachL2NetworkToClusterMsg,
    APICreateL2NoVlanNetworkMsg,
    APICreateL2VlanNetworkMsg,
    APIDeleteL2NetworkMsg,
    APIDetachL2NetworkFromClusterMsg,
    APIUpdateL2NetworkMsg,
    DeleteL2NetworkMsg,
    DetachL2NetworkMsg,
    L2NetworkEvent,
)
from zstackpy.services.network.l2.bridges import (
    Bridge,
    connected_hosts,
    create_bridges_for_host,
    realise_on_hosts,
)
from zstackpy.services.network.l2.placement import hosts_on_networks
from zstackpy.services.network.messages import L2_NETWORK_SERVICE
from zstackpy.services.network.models import (
    L2_NO_VLAN,
    L2_VLAN,
    L2NetworkClusterRefVO,
    L2NetworkVO,
)
from zstackpy.services.network.queues import l2_queue
from zstackpy.services.resource_service import Change, ResourceService
from zstackpy.services.zone.models import ZoneVO

L2_TYPE = "L2NetworkVO"
REF_TYPE = "L2NetworkClusterRefVO"  # the cascade's name for attachments (children of clusters)
_ZONE_TYPE = "ZoneVO"
_CLUSTER_TYPE = "ClusterVO"


class L2NetworkService(ResourceService):
    name = L2_NETWORK_SERVICE
    model = L2NetworkVO
    inventory = L2NetworkInventory
    resource_type = L2_TYPE
    noun = "L2 network"

    # ----- create, update ---------------------------------------------------------------

    @handles(APICreateL2NoVlanNetworkMsg, APICreateL2VlanNetworkMsg)
    async def create(
        self, msg: APICreateL2NoVlanNetworkMsg | APICreateL2VlanNetworkMsg
    ) -> L2NetworkEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.ctx.queues.run(l2_queue(msg.resource_uuid), self._create, msg)

    async def _create(
        self, msg: APICreateL2NoVlanNetworkMsg | APICreateL2VlanNetworkMsg
    ) -> L2NetworkEvent:
        uuid, auth = msg.resource_uuid, msg.require_auth()
        assert uuid is not None
        vlan = msg.vlan if isinstance(msg, APICreateL2VlanNetworkMsg) else None
        try:
            async with self.ctx.db.session() as session, session.begin():
                await self.refuse_duplicate(session, uuid)
                await self._require_zone(session, msg.zone_uuid, auth)
                await self._refuse_same_wire(session, msg.zone_uuid, msg.physical_interface, vlan)
                session.add(
                    L2NetworkVO(
                        uuid=uuid,
                        zone_uuid=msg.zone_uuid,
                        name=msg.name,
                        description=msg.description,
                        physical_interface=msg.physical_interface,
                        type=L2_NO_VLAN if vlan is None else L2_VLAN,
                        v_switch_type=msg.v_switch_type,
                        virtual_network_id=vlan or 0,
                        isolated=msg.isolated,
                    )
                )
                add_resource(session, uuid=uuid, resource_type=L2_TYPE, name=msg.name, auth=auth)
        except IntegrityError:
            # Another create of the same wire won the race past our check: name it.
            async with self.ctx.db.session() as session:
                await self._refuse_same_wire(session, msg.zone_uuid, msg.physical_interface, vlan)
            raise
        return L2NetworkEvent(inventory=await self.answer(uuid, "created", auth))

    async def _require_zone(self, session: AsyncSession, zone_uuid: str, auth: AuthContext) -> None:
        # A zone row without its ResourceVO cannot exist, so may_use covers both checks.
        if await session.get(ZoneVO, zone_uuid) is None or not await may_use(
            session, zone_uuid, auth
        ):
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND, f"no zone with uuid {zone_uuid}", uuid=zone_uuid
            )

    @staticmethod
    async def _refuse_same_wire(
        session: AsyncSession, zone_uuid: str, interface: str, vlan: int | None
    ) -> None:
        """One network per (interface, vlan) in a zone: two would share one bridge."""
        existing = (
            await session.execute(
                select(L2NetworkVO.uuid, L2NetworkVO.name).where(
                    L2NetworkVO.zone_uuid == zone_uuid,
                    L2NetworkVO.physical_interface == interface,
                    L2NetworkVO.virtual_network_id == (vlan or 0),
                )
            )
        ).first()
        if existing is None:
            return
        wire = f"physical interface {interface}" + ("" if vlan is None else f" and vlan {vlan}")
        raise ZError(
            L2Err.DUPLICATE_NETWORK,
            f"L2 network {existing.name} ({existing.uuid}) already uses {wire} in zone {zone_uuid}",
            existing_uuid=existing.uuid,
            zone_uuid=zone_uuid,
            physical_interface=interface,
            vlan=vlan,
        )

    @handles(APIUpdateL2NetworkMsg)
    async def update(self, msg: APIUpdateL2NetworkMsg) -> L2NetworkEvent:
        return await self.ctx.queues.run(l2_queue(msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateL2NetworkMsg) -> L2NetworkEvent:
        # Column names, not wire names: messages serialize by alias by default.
        changes = msg.model_dump(include={"name", "description"}, exclude_none=True, by_alias=False)
        await self.update_fields(msg.uuid, changes)
        return L2NetworkEvent(inventory=await self.answer(msg.uuid, "updated", msg.require_auth()))

    # ----- attach, detach ---------------------------------------------------------------

    @handles(APIAttachL2NetworkToClusterMsg)
    async def attach(self, msg: APIAttachL2NetworkToClusterMsg) -> L2NetworkEvent:
        return await self.ctx.queues.run(l2_queue(msg.l2_network_uuid), self._attach, msg)

    async def _attach(self, msg: APIAttachL2NetworkToClusterMsg) -> L2NetworkEvent:
        auth = msg.require_auth()
        async with self.ctx.db.session() as session, session.begin():
            l2: L2NetworkVO = await self.require(session, msg.l2_network_uuid)
            cluster = await session.get(ClusterVO, msg.cluster_uuid)
            if cluster is None or not await may_use(session, msg.cluster_uuid, auth):
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no cluster with uuid {msg.cluster_uuid}",
                    uuid=msg.cluster_uuid,
                )
            if cluster.zone_uuid != l2.zone_uuid:
                raise ZError(
                    L2Err.CLUSTER_IN_OTHER_ZONE,
                    f"cluster {cluster.name} is in zone {cluster.zone_uuid}, L2 network "
                    f"{l2.name} in zone {l2.zone_uuid}: both must be in one zone",
                    cluster_uuid=cluster.uuid,
                    l2_network_uuid=l2.uuid,
                )
            if await self._ref(session, l2.uuid, cluster.uuid) is not None:
                raise ZError(
                    L2Err.ALREADY_ATTACHED,
                    f"L2 network {l2.name} is already attached to cluster {cluster.name}",
                    cluster_uuid=cluster.uuid,
                    l2_network_uuid=l2.uuid,
                )
            bridge = Bridge.of(l2)
            # The ref goes in first, so a host connecting meanwhile makes the bridge itself.
            session.add(
                L2NetworkClusterRefVO(
                    l2_network_uuid=l2.uuid,
                    cluster_uuid=cluster.uuid,
                    l2_provider_type=msg.l2_provider_type,
                )
            )
        try:
            hosts = await connected_hosts(self.ctx, msg.cluster_uuid)
            await realise_on_hosts(self.ctx, bridge, hosts)
        except Exception:
            await self._detach(msg.l2_network_uuid, msg.cluster_uuid)
            raise
        return L2NetworkEvent(inventory=await self.answer(msg.l2_network_uuid, "updated", auth))

    @handles(APIDetachL2NetworkFromClusterMsg)
    async def detach_api(self, msg: APIDetachL2NetworkFromClusterMsg) -> L2NetworkEvent:
        return await self.ctx.queues.run(l2_queue(msg.l2_network_uuid), self._detach_api, msg)

    async def _detach_api(self, msg: APIDetachL2NetworkFromClusterMsg) -> L2NetworkEvent:
        async with self.ctx.db.session() as session:
            l2: L2NetworkVO = await self.require(session, msg.l2_network_uuid)
            if await self._ref(session, l2.uuid, msg.cluster_uuid) is None:
                raise ZError(
                    L2Err.NOT_ATTACHED,
                    f"L2 network {l2.name} is not attached to cluster {msg.cluster_uuid}",
                    cluster_uuid=msg.cluster_uuid,
                    l2_network_uuid=l2.uuid,
                )
        # Bridges stay on the hosts, as in ZStack: VMs still plugged into them keep working.
        await self._detach(msg.l2_network_uuid, msg.cluster_uuid)
        auth = msg.require_auth()
        return L2NetworkEvent(inventory=await self.answer(msg.l2_network_uuid, "updated", auth))

    @handles(DetachL2NetworkMsg)
    async def detach_internal(self, msg: DetachL2NetworkMsg) -> Reply:
        await self.ctx.queues.run(
            l2_queue(msg.l2_network_uuid), self._detach, msg.l2_network_uuid, msg.cluster_uuid
        )
        return Reply()

    async def _detach(self, l2_uuid: str, cluster_uuid: str) -> None:
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                delete(L2NetworkClusterRefVO).where(
                    L2NetworkClusterRefVO.l2_network_uuid == l2_uuid,
                    L2NetworkClusterRefVO.cluster_uuid == cluster_uuid,
                )
            )

    @staticmethod
    async def _ref(
        session: AsyncSession, l2_uuid: str, cluster_uuid: str
    ) -> L2NetworkClusterRefVO | None:
        return (
            await session.execute(
                select(L2NetworkClusterRefVO).where(
                    L2NetworkClusterRefVO.l2_network_uuid == l2_uuid,
                    L2NetworkClusterRefVO.cluster_uuid == cluster_uuid,
                )
            )
        ).scalar_one_or_none()

    # ----- delete -----------------------------------------------------------------------

    @handles(APIDeleteL2NetworkMsg)
    async def delete_api(self, msg: APIDeleteL2NetworkMsg) -> L2NetworkEvent:
        await self.ctx.queues.run(l2_queue(msg.uuid), self._delete, msg.uuid, msg.delete_mode)
        return L2NetworkEvent()

    @handles(DeleteL2NetworkMsg)
    async def delete_internal(self, msg: DeleteL2NetworkMsg) -> Reply:
        await self.ctx.queues.run(l2_queue(msg.uuid), self._delete, msg.uuid, msg.delete_mode)
        return Reply()

    async def _delete(self, uuid: str, mode: str) -> None:
        # Children (L3 networks, tags) first: an L3 with IPs in use refuses (Permissive).
        await self.delete_with_children(uuid, mode, None)

    async def remove(self, uuids: list[str], auth: AuthContext | None) -> None:
        async with self.ctx.db.session() as session, session.begin():
            await session.execute(
                delete(L2NetworkClusterRefVO).where(
                    L2NetworkClusterRefVO.l2_network_uuid.in_(uuids)
                )
            )
        await super().remove(uuids, auth)

    async def answer(self, uuid: str, change: Change, auth: AuthContext) -> Inventory:
        """The inventory with its attached clusters, after announcing the change."""
        async with self.ctx.db.session() as session:
            row = (
                await session.execute(
                    select(L2NetworkVO)
                    .options(selectinload(L2NetworkVO.cluster_refs))
                    .where(L2NetworkVO.uuid == uuid)
                )
            ).scalar_one_or_none()
        if row is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no L2 network with uuid {uuid}", uuid=uuid)
        inventory = l2_inventory(row)
        await self._publish(uuid, change, auth, inventory.model_dump(mode="json", by_alias=True))
        return inventory

    # ----- CascadeParticipant: L2s belong to zones, attachments to clusters -------------

    async def cascade_children(
        self, parent_type: str, parent_uuids: tuple[str, ...]
    ) -> CascadeChildren | None:
        async with self.ctx.db.session() as session:
            if parent_type == _ZONE_TYPE:
                rows = await session.execute(
                    select(L2NetworkVO.uuid).where(L2NetworkVO.zone_uuid.in_(parent_uuids))
                )
                return CascadeChildren(L2_TYPE, tuple(rows.scalars()))
            if parent_type == _CLUSTER_TYPE:
                refs = await session.execute(
                    select(L2NetworkClusterRefVO.id).where(
                        L2NetworkClusterRefVO.cluster_uuid.in_(parent_uuids)
                    )
                )
                return CascadeChildren(REF_TYPE, tuple(str(i) for i in refs.scalars()))
        return None

    async def cascade_check(self, children: CascadeChildren) -> None:
        """An L2 refuses through its L3 networks (their own participant); a detach never."""

    async def cascade_delete(self, children: CascadeChildren, mode: DeleteMode) -> None:
        if children.resource_type == L2_TYPE:
            msgs: list[NeedReplyMessage] = [
                DeleteL2NetworkMsg(uuid=u, delete_mode=mode.value) for u in children.uuids
            ]
        else:
            async with self.ctx.db.session() as session:
                refs = await session.execute(
                    select(
                        L2NetworkClusterRefVO.l2_network_uuid, L2NetworkClusterRefVO.cluster_uuid
                    ).where(L2NetworkClusterRefVO.id.in_([int(i) for i in children.uuids]))
                )
                msgs = [DetachL2NetworkMsg(l2_network_uuid=l2, cluster_uuid=c) for l2, c in refs]
        for reply in await self.ctx.bus.call_many(msgs, parallelism=8):
            reply.raise_if_error()

    # ----- HostConnectExtension, HostAllocatorFilter ------------------------------------

    async def host_connected(self, host: ConnectingHost) -> None:
        await create_bridges_for_host(self.ctx, host)

    async def filter_hosts(
        self, request: AllocateHostMsg, candidates: list[HostCandidate]
    ) -> list[HostCandidate]:
        return await hosts_on_networks(self.ctx, request, candidates)
