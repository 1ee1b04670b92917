"""The network-service service: provider rows, which provider serves which type on which
L3 network (changed in the L3's queue, ``l3:<uuid>``, on its owner node), and the fan-out
of VM placements and host reconnects to the providers serving the VMs' networks."""

from __future__ import annotations

import logging
import uuid as uuid_mod
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from zstackpy.api.events import ResourceChangedEvent
from zstackpy.core.coalesce import CoalescedReads
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import Service, handles
from zstackpy.services.host.extensions import ConnectingHost
from zstackpy.services.network.inventories import (
    L3_LOAD_OPTIONS,
    L3NetworkInventory,
    l3_inventory,
)
from zstackpy.services.network.models import L3NetworkVO, NetworkServiceL3NetworkRefVO
from zstackpy.services.network.queues import l3_queue
from zstackpy.services.networkservice.api import (
    APIAttachNetworkServiceToL3NetworkMsg,
    APIDetachNetworkServiceFromL3NetworkMsg,
    APIGetNetworkServiceTypesMsg,
    APIGetNetworkServiceTypesReply,
    APIGetVmNicAttachedNetworkServiceMsg,
    APIGetVmNicAttachedNetworkServiceReply,
    L3NetworkServicesEvent,
    ServiceMap,
)
from zstackpy.services.networkservice.errors import NetworkServiceErr
from zstackpy.services.networkservice.extensions import (
    L3ServiceChange,
    NetworkServiceProviderBackend,
    VmServicesEvent,
)
from zstackpy.services.networkservice.messages import (
    NETWORK_SERVICE,
    GetL3NetworkServicesMsg,
    GetL3NetworkServicesReply,
)
from zstackpy.services.networkservice.models import NetworkServiceProviderVO, NetworkServiceTypeVO
from zstackpy.services.vm.extensions import VmPlacementEvent
from zstackpy.services.vm.models import VmNicVO

log = logging.getLogger(__name__)

_L3_TYPE = "L3NetworkVO"
T = TypeVar("T")
_UUID_NAMESPACE = uuid_mod.UUID("6c1b8f52-6f0e-4b7e-9a55-2a9f0e4d6c11")


def provider_uuid(provider_type: str) -> str:
    """The same uuid on every node and every start: providers are made, not created."""
    return uuid_mod.uuid5(_UUID_NAMESPACE, provider_type).hex


def _types(value: list[str] | str) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    return [t.strip() for t in items if t.strip()]


class NetworkServiceService(Service):
    name = NETWORK_SERVICE

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        # Every VM start asks for its networks' services: a burst on one network, one read.
        self._reads: CoalescedReads[tuple[str, ...], dict[str, dict[str, str]]] = CoalescedReads(
            self._read_services
        )

    def _backends(self) -> dict[str, NetworkServiceProviderBackend]:
        return {
            b.provider().type: b for b in self.ctx.plugins.extensions(NetworkServiceProviderBackend)
        }

    async def start(self) -> None:
        await self._seed_providers()

    async def _seed_providers(self) -> None:
        """A row per registered provider, its types completed; nodes starting together may
        race on the insert: the loser finds the winner's row."""
        for backend in self._backends().values():
            info = backend.provider()
            uuid = provider_uuid(info.type)
            try:
                async with self.ctx.db.session() as session, session.begin():
                    if await session.get(NetworkServiceProviderVO, uuid) is None:
                        session.add(
                            NetworkServiceProviderVO(
                                uuid=uuid,
                                name=info.name,
                                description=info.description,
                                type=info.type,
                            )
                        )
                        await session.flush()
                    known = set(
                        (
                            await session.execute(
                                select(NetworkServiceTypeVO.type).where(
                                    NetworkServiceTypeVO.network_service_provider_uuid == uuid
                                )
                            )
                        ).scalars()
                    )
                    for service_type in info.service_types:
                        if service_type not in known:
                            session.add(
                                NetworkServiceTypeVO(
                                    network_service_provider_uuid=uuid, type=service_type
                                )
                            )
            except IntegrityError:
                log.info("network-service provider %s was made by another node", info.type)

    # ----- API ----------------------------------------------------------------------------

    @handles(APIGetNetworkServiceTypesMsg)
    async def get_types(self, msg: APIGetNetworkServiceTypesMsg) -> APIGetNetworkServiceTypesReply:
        return APIGetNetworkServiceTypesReply(
            types={t: list(b.provider().service_types) for t, b in sorted(self._backends().items())}
        )

    @handles(APIGetVmNicAttachedNetworkServiceMsg)
    async def nic_services(
        self, msg: APIGetVmNicAttachedNetworkServiceMsg
    ) -> APIGetVmNicAttachedNetworkServiceReply:
        async with self.ctx.db.session() as session:
            l3_uuid = await session.scalar(
                select(VmNicVO.l3_network_uuid).where(VmNicVO.uuid == msg.vm_nic_uuid)
            )
        if l3_uuid is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no VM NIC with uuid {msg.vm_nic_uuid}",
                uuid=msg.vm_nic_uuid,
            )
        services = await self._services_of([l3_uuid])
        return APIGetVmNicAttachedNetworkServiceReply(
            network_services=sorted(services.get(l3_uuid, {}))
        )

    @handles(APIAttachNetworkServiceToL3NetworkMsg)
    async def attach(self, msg: APIAttachNetworkServiceToL3NetworkMsg) -> L3NetworkServicesEvent:
        return await self.ctx.queues.run(l3_queue(msg.l3_network_uuid), self._attach, msg)

    async def _attach(self, msg: APIAttachNetworkServiceToL3NetworkMsg) -> L3NetworkServicesEvent:
        l3_uuid = msg.l3_network_uuid
        wanted = await self._resolve(msg.network_services)
        existing = await self._refs(l3_uuid)
        changes: list[L3ServiceChange] = []
        for provider, types in wanted.items():
            new = []
            for service_type in types:
                holder = existing.get(service_type)
                if holder == provider:
                    continue  # already so: attaching again changes nothing
                if holder is not None:
                    raise ZError(
                        NetworkServiceErr.TYPE_TAKEN,
                        f"service {service_type} of L3 network {l3_uuid} is already served by "
                        f"provider {holder}: detach it first",
                        l3NetworkUuid=l3_uuid,
                        networkServiceType=service_type,
                        networkServiceProviderUuid=holder,
                    )
                new.append(service_type)
            if new:
                changes.append(L3ServiceChange(l3_uuid, provider, tuple(new)))
        backends = self._backends_by_uuid()
        done: list[L3ServiceChange] = []
        try:
            for change in changes:
                await backends[change.provider_uuid].attach_to_l3(change)
                done.append(change)
            async with self.ctx.db.session() as session, session.begin():
                for change in changes:
                    for service_type in change.service_types:
                        session.add(
                            NetworkServiceL3NetworkRefVO(
                                l3_network_uuid=l3_uuid,
                                network_service_provider_uuid=change.provider_uuid,
                                network_service_type=service_type,
                            )
                        )
        except BaseException:
            for change in reversed(done):
                await _quietly(backends[change.provider_uuid].detach_from_l3, change)
            raise
        return L3NetworkServicesEvent(inventory=await self._answer(l3_uuid, msg))

    @handles(APIDetachNetworkServiceFromL3NetworkMsg)
    async def detach(self, msg: APIDetachNetworkServiceFromL3NetworkMsg) -> L3NetworkServicesEvent:
        return await self.ctx.queues.run(l3_queue(msg.l3_network_uuid), self._detach, msg)

    async def _detach(self, msg: APIDetachNetworkServiceFromL3NetworkMsg) -> L3NetworkServicesEvent:
        l3_uuid = msg.l3_network_uuid
        if msg.network_services is None and msg.service_type is None:
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                "name the services to detach: networkServices or service",
                field="networkServices",
            )
        existing = await self._refs(l3_uuid)
        if msg.network_services is not None:
            wanted = await self._resolve(msg.network_services)
            gone = {t: p for p, types in wanted.items() for t in types if existing.get(t) == p}
        else:
            gone = {t: p for t, p in existing.items() if t == msg.service_type}
        by_provider: dict[str, list[str]] = {}
        for service_type, provider in gone.items():
            by_provider.setdefault(provider, []).append(service_type)
        backends = self._backends_by_uuid()
        # Every provider agrees before anything is removed: a refusal changes nothing.
        for provider, types in by_provider.items():
            await backends[provider].detach_from_l3(
                L3ServiceChange(l3_uuid, provider, tuple(types))
            )
        if gone:
            async with self.ctx.db.session() as session, session.begin():
                await session.execute(
                    delete(NetworkServiceL3NetworkRefVO).where(
                        NetworkServiceL3NetworkRefVO.l3_network_uuid == l3_uuid,
                        NetworkServiceL3NetworkRefVO.network_service_type.in_(list(gone)),
                    )
                )
        for provider, types in by_provider.items():
            await _quietly(
                backends[provider].detached_from_l3,
                L3ServiceChange(l3_uuid, provider, tuple(types)),
            )
        return L3NetworkServicesEvent(inventory=await self._answer(l3_uuid, msg))

    async def _resolve(self, services: ServiceMap) -> dict[str, list[str]]:
        """provider uuid -> types, each checked: the provider exists and serves the type."""
        async with self.ctx.db.session() as session:
            rows = await session.execute(
                select(
                    NetworkServiceTypeVO.network_service_provider_uuid, NetworkServiceTypeVO.type
                )
            )
            served: dict[str, set[str]] = {}
            for provider, service_type in rows.all():
                served.setdefault(provider, set()).add(service_type)
        resolved: dict[str, list[str]] = {}
        for provider, value in services.items():
            if provider not in served:
                raise ZError(
                    NetworkServiceErr.UNKNOWN_PROVIDER,
                    f"no network-service provider with uuid {provider}",
                    uuid=provider,
                )
            types = _types(value)
            unknown = sorted(set(types) - served[provider])
            if unknown or not types:
                raise ZError(
                    NetworkServiceErr.TYPE_NOT_PROVIDED,
                    f"provider {provider} does not serve {', '.join(unknown) or 'nothing'} "
                    f"(it serves {', '.join(sorted(served[provider]))})",
                    networkServiceProviderUuid=provider,
                    networkServiceTypes=unknown,
                )
            resolved[provider] = list(dict.fromkeys(types))
        return resolved

    async def _refs(self, l3_uuid: str) -> dict[str, str]:
        """service type -> provider uuid of an existing L3 network (SYS.1003 if none)."""
        async with self.ctx.db.session() as session:
            if await session.get(L3NetworkVO, l3_uuid) is None:
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND, f"no L3 network with uuid {l3_uuid}", uuid=l3_uuid
                )
            rows = await session.execute(
                select(
                    NetworkServiceL3NetworkRefVO.network_service_type,
                    NetworkServiceL3NetworkRefVO.network_service_provider_uuid,
                ).where(NetworkServiceL3NetworkRefVO.l3_network_uuid == l3_uuid)
            )
            return {t: p for t, p in rows.all()}

    def _backends_by_uuid(self) -> dict[str, NetworkServiceProviderBackend]:
        return {provider_uuid(t): b for t, b in self._backends().items()}

    async def _answer(
        self,
        l3_uuid: str,
        msg: APIAttachNetworkServiceToL3NetworkMsg | APIDetachNetworkServiceFromL3NetworkMsg,
    ) -> L3NetworkInventory:
        async with self.ctx.db.session() as session:
            row = (
                await session.execute(
                    select(L3NetworkVO).options(*L3_LOAD_OPTIONS).where(L3NetworkVO.uuid == l3_uuid)
                )
            ).scalar_one()
        inventory = l3_inventory(row)
        auth = msg.require_auth()
        await self.ctx.bus.publish(
            ResourceChangedEvent(
                resource_type=_L3_TYPE,
                resource_uuid=l3_uuid,
                change="updated",
                account_uuid=auth.account_uuid,
                inventory=inventory.model_dump(mode="json", by_alias=True),
            )
        )
        return inventory

    # ----- for other services -------------------------------------------------------------

    @handles(GetL3NetworkServicesMsg)
    async def l3_services(self, msg: GetL3NetworkServicesMsg) -> GetL3NetworkServicesReply:
        return GetL3NetworkServicesReply(services=await self._services_of(msg.l3_network_uuids))

    async def _services_of(self, l3_uuids: list[str]) -> dict[str, dict[str, str]]:
        if not l3_uuids:
            return {}
        return await self._reads.read(tuple(sorted(set(l3_uuids))))

    async def _read_services(self, l3_uuids: tuple[str, ...]) -> dict[str, dict[str, str]]:
        async with self.ctx.db.read_session() as session:
            rows = await session.execute(
                select(
                    NetworkServiceL3NetworkRefVO.l3_network_uuid,
                    NetworkServiceL3NetworkRefVO.network_service_type,
                    NetworkServiceProviderVO.type,
                )
                .join(
                    NetworkServiceProviderVO,
                    NetworkServiceProviderVO.uuid
                    == NetworkServiceL3NetworkRefVO.network_service_provider_uuid,
                )
                .where(NetworkServiceL3NetworkRefVO.l3_network_uuid.in_(l3_uuids))
            )
            services: dict[str, dict[str, str]] = {}
            for l3_uuid, service_type, provider_type in rows.all():
                services.setdefault(l3_uuid, {})[service_type] = provider_type
            return services

    # ----- VmPlacementExtension: the providers of the VM's networks follow it -------------

    async def _per_provider(
        self, event: VmPlacementEvent
    ) -> list[tuple[NetworkServiceProviderBackend, VmServicesEvent]]:
        services = await self._services_of(sorted({n.l3_network_uuid for n in event.nics}))
        backends = self._backends()
        grouped: dict[str, dict[str, list[str]]] = {}
        for nic in event.nics:
            for service_type, provider in services.get(nic.l3_network_uuid, {}).items():
                grouped.setdefault(provider, {}).setdefault(nic.uuid, []).append(service_type)
        out = []
        for provider, per_nic in grouped.items():
            backend = backends.get(provider)
            if backend is None:
                continue  # a provider whose plugin is not loaded here: nothing to drive
            nics = tuple(n for n in event.nics if n.uuid in per_nic)
            out.append(
                (
                    backend,
                    VmServicesEvent(
                        placement=event,
                        nics=nics,
                        services={k: tuple(v) for k, v in per_nic.items()},
                    ),
                )
            )
        return out

    async def vm_arriving(self, event: VmPlacementEvent) -> None:
        agreed: list[tuple[NetworkServiceProviderBackend, VmServicesEvent]] = []
        try:
            for backend, services in await self._per_provider(event):
                await backend.vm_arriving(services)
                agreed.append((backend, services))
        except BaseException:
            for backend, services in reversed(agreed):
                await _quietly(backend.vm_left, services)
            raise

    async def vm_arrived(self, event: VmPlacementEvent) -> None:
        for backend, services in await self._per_provider(event):
            await _quietly(backend.vm_arrived, services)

    async def vm_left(self, event: VmPlacementEvent) -> None:
        for backend, services in await self._per_provider(event):
            await _quietly(backend.vm_left, services)

    # ----- HostConnectExtension ------------------------------------------------------------

    async def host_connected(self, host: ConnectingHost) -> None:
        for backend in self._backends().values():
            await backend.host_connected(host)


async def _quietly(fn: Callable[[T], Awaitable[None]], arg: T) -> None:
    """Undo and announcements: logged, never raised over the error that matters."""
    try:
        await fn(arg)
    except Exception:
        log.exception("network service: %s failed", getattr(fn, "__qualname__", fn))
