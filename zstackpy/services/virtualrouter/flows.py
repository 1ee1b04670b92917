"""The flows of ``flows/virtual-router.yaml``: making a guest L3 network's router (an
appliance VM through the VM flows, its record, its agent connected and configured) and
bringing one back (its VM started again, its agent connected and configured anew).

Run in the L3's router queue (``routers.router_queue``). A failed creation leaves no VM,
no record, no address; a failed reconnect leaves the router Disconnected for the monitor
to try again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select

from zstackpy.api.messages import AuthContext
from zstackpy.core.agent.driver import DeployRequest
from zstackpy.core.context import NodeContext
from zstackpy.core.db import ResourceVO
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.flow import Flow
from zstackpy.core.ids import new_uuid
from zstackpy.services.network.messages import GetL3NetworksMsg, GetL3NetworksReply
from zstackpy.services.virtualrouter import agent
from zstackpy.services.virtualrouter.messages import (
    APPLIANCE_AGENT_PORT,
    APPLIANCE_VM,
    VIRTUAL_ROUTER,
    ApplianceStatus,
    RouterView,
    VirtualRouterErr,
)
from zstackpy.services.virtualrouter.models import ApplianceVmVO, VirtualRouterOfferingVO
from zstackpy.services.virtualrouter.routers import set_status, view_of
from zstackpy.services.virtualrouter.tables import whole
from zstackpy.services.vm.api import APIStartVmInstanceMsg, APIStopVmInstanceMsg
from zstackpy.services.vm.messages import (
    VM_SERVICE,
    CreateApplianceVmMsg,
    CreateApplianceVmReply,
    DeleteVmMsg,
)

log = logging.getLogger(__name__)

VM_TIMEOUT_S = 600.0
# The agent answers once the appliance has booted: tries, a second apart.
_AGENT_WAIT_TRIES = 30


@dataclass
class RouterCtx:
    node: NodeContext
    l3_uuid: str
    # select-virtual-router-offering (creation) / the record (reconnect)
    offering: VirtualRouterOfferingVO | None = None
    account_uuid: str | None = None
    # create-virtual-router-vm: recorded before asking, so a timeout is undone too
    vm_uuid: str | None = None
    vm_created: bool = False
    record_created: bool = False
    router: RouterView | None = None


class SelectVirtualRouterOffering(Flow[RouterCtx]):
    """The zone's default offering, else its newest (VR.1001 when it has none)."""

    async def run(self, ctx: RouterCtx) -> None:
        ctx.offering, ctx.account_uuid = await offering_for(ctx.node, ctx.l3_uuid)


async def offering_for(ctx: NodeContext, l3_uuid: str) -> tuple[VirtualRouterOfferingVO, str]:
    """The offering a router of ``l3_uuid`` is made from, and the account owning it."""
    reply = await ctx.bus.request(GetL3NetworksMsg(l3_network_uuids=[l3_uuid]), GetL3NetworksReply)
    zone_uuid = reply.networks[0].zone_uuid
    async with ctx.db.session() as session:
        rows = (
            await session.execute(
                select(VirtualRouterOfferingVO, ResourceVO.account_uuid)
                .join(ResourceVO, ResourceVO.uuid == VirtualRouterOfferingVO.uuid)
                .where(VirtualRouterOfferingVO.zone_uuid == zone_uuid)
            )
        ).all()
    if not rows:
        raise ZError(
            VirtualRouterErr.NO_OFFERING,
            f"zone {zone_uuid} has no virtual-router offering: create one first",
            zoneUuid=zone_uuid,
            l3NetworkUuid=l3_uuid,
        )
    offering, account = max(rows, key=lambda r: (r[0].is_default, r[0].uuid))
    if account is None:
        raise ZError(
            VirtualRouterErr.BAD_OFFERING,
            f"virtual-router offering {offering.uuid} has no owner account",
            uuid=offering.uuid,
        )
    return offering, account


class CreateVirtualRouterVm(Flow[RouterCtx]):
    """The appliance VM (``appliance-vm-create``), NICs on the management network, the
    public one (when it is another) and the guest network, in that order."""

    async def run(self, ctx: RouterCtx) -> None:
        offering = ctx.offering
        assert offering is not None
        assert ctx.account_uuid is not None
        networks = list(
            dict.fromkeys(
                [offering.management_network_uuid, offering.public_network_uuid, ctx.l3_uuid]
            )
        )
        ctx.vm_uuid = new_uuid()
        ctx.vm_created = True
        reply = await ctx.node.bus.request(
            CreateApplianceVmMsg(
                vm_uuid=ctx.vm_uuid,
                name=f"virtualRouter.l3.{ctx.l3_uuid}",
                appliance_vm_type=APPLIANCE_VM,
                image_uuid=offering.image_uuid,
                instance_offering_uuid=offering.uuid,
                l3_network_uuids=networks,
                default_l3_network_uuid=offering.public_network_uuid,
                zone_uuid=offering.zone_uuid,
                account_uuid=ctx.account_uuid,
            ),
            CreateApplianceVmReply,
            timeout=VM_TIMEOUT_S,
        )
        assert reply.inventory is not None

    async def rollback(self, ctx: RouterCtx) -> None:
        if ctx.vm_created and ctx.vm_uuid is not None:
            reply = await ctx.node.bus.call(
                DeleteVmMsg(vm_instance_uuid=ctx.vm_uuid), timeout=VM_TIMEOUT_S
            )
            reply.raise_if_error()
            ctx.vm_created = False


class CreateVirtualRouterRecord(Flow[RouterCtx]):
    async def run(self, ctx: RouterCtx) -> None:
        offering = ctx.offering
        assert offering is not None
        assert ctx.vm_uuid is not None
        async with ctx.node.db.session() as session, session.begin():
            session.add(
                ApplianceVmVO(
                    uuid=ctx.vm_uuid,
                    appliance_vm_type=VIRTUAL_ROUTER,
                    management_network_uuid=offering.management_network_uuid,
                    default_route_l3_network_uuid=offering.public_network_uuid,
                    public_network_uuid=offering.public_network_uuid,
                    guest_l3_network_uuid=ctx.l3_uuid,
                    offering_uuid=offering.uuid,
                    status=ApplianceStatus.CONNECTING.value,
                    agent_port=APPLIANCE_AGENT_PORT,
                    token=secrets.token_hex(16),
                )
            )
        ctx.record_created = True

    async def rollback(self, ctx: RouterCtx) -> None:
        if ctx.record_created:
            async with ctx.node.db.session() as session, session.begin():
                await session.execute(
                    delete(ApplianceVmVO).where(ApplianceVmVO.uuid == ctx.vm_uuid)
                )
            ctx.record_created = False


class StartVirtualRouterVm(Flow[RouterCtx]):
    """Its VM stopped (cold) and started again through the VM service: a fresh boot."""

    async def run(self, ctx: RouterCtx) -> None:
        assert ctx.vm_uuid is not None
        assert ctx.account_uuid is not None
        auth = AuthContext(session_uuid="", account_uuid=ctx.account_uuid, is_admin=True)
        stop = await ctx.node.bus.call(
            APIStopVmInstanceMsg(uuid=ctx.vm_uuid, type="cold", auth=auth),
            service=VM_SERVICE,
            timeout=VM_TIMEOUT_S,
        )
        if not stop.success:
            # Already Stopped answers a wrong state: the start below is what matters.
            log.info("virtual router %s: stop before restart: %s", ctx.vm_uuid, stop.error)
        start = await ctx.node.bus.call(
            APIStartVmInstanceMsg(uuid=ctx.vm_uuid, auth=auth),
            service=VM_SERVICE,
            timeout=VM_TIMEOUT_S,
        )
        start.raise_if_error()


class ConnectVirtualRouter(Flow[RouterCtx]):
    """Boot its agent, wait for it, give it its NICs, send it everything it serves (the
    whole tables: a fresh appliance holds nothing); then it is Connected."""

    async def run(self, ctx: RouterCtx) -> None:
        assert ctx.vm_uuid is not None
        async with ctx.node.db.session() as session:
            record = await session.get(ApplianceVmVO, ctx.vm_uuid)
        if record is None:
            raise ZError(SysErr.RESOURCE_NOT_FOUND, f"no virtual router {ctx.vm_uuid}")
        router = await view_of(ctx.node, record)
        if router is None:
            raise ZError(
                VirtualRouterErr.NOT_CONNECTED,
                f"virtual router {record.uuid} lacks a NIC on one of its networks",
                uuid=record.uuid,
            )
        await set_status(ctx.node, router.uuid, ApplianceStatus.CONNECTING)
        await boot_agent(ctx.node, router)
        await configure(ctx.node, router)
        await set_status(ctx.node, router.uuid, ApplianceStatus.CONNECTED)
        ctx.router = router

    async def rollback(self, ctx: RouterCtx) -> None:
        if ctx.vm_uuid is not None and not ctx.record_created:
            # A reconnect that failed: the router stays, Disconnected, for the monitor.
            await set_status(ctx.node, ctx.vm_uuid, ApplianceStatus.DISCONNECTED)


async def boot_agent(ctx: NodeContext, router: RouterView) -> None:
    """The appliance's agent installed and started with the router's token by the node's
    agent driver (real appliances: ``ansible/vrouter-agent.yml`` over SSH with the
    operator's key; simulated ones: the simulator's deploy), then waited for."""
    driver = ctx.agents.driver
    if driver is None:
        raise ZError(SysErr.NOT_READY, "the agent client is not started")
    await driver.deploy(
        DeployRequest(
            endpoint=agent.endpoint(router),
            kind=VIRTUAL_ROUTER,
            username=agent.APPLIANCE_USER,
            password="",
            ssh_port=22,
            send_command_url=ctx.agents.send_command_url,
        )
    )
    last: ZError | None = None
    for _ in range(_AGENT_WAIT_TRIES):
        try:
            await agent.call(ctx, router, agent.PING, {"uuid": router.uuid}, timeout=5.0)
            return
        except ZError as exc:
            last = exc
            await asyncio.sleep(1.0)
    raise ZError(
        VirtualRouterErr.NOT_CONNECTED,
        f"the agent of virtual router {router.uuid} did not come up",
        uuid=router.uuid,
        lastError=last.description if last else None,
    )


async def configure(ctx: NodeContext, router: RouterView) -> None:
    """Its NICs, then every table it should hold, each replacing what it had."""
    nics = [
        {"ip": router.management_ip, "role": "management"},
        {
            "ip": router.public_ip,
            "mac": router.public_mac,
            "netmask": router.public_netmask or None,
            "gateway": router.public_gateway or None,  # the appliance's default route
            "role": "public",
        },
        {
            "ip": router.guest_ip,
            "mac": router.guest_mac,
            "netmask": router.guest_netmask,
            "gateway": router.guest_gateway,
            "role": "guest",
        },
    ]
    await agent.call(ctx, router, agent.INIT, {"uuid": router.uuid, "nics": nics})
    tables = await whole(ctx, router)
    await agent.call(ctx, router, agent.ADD_DHCP, {"dhcp": tables.dhcp, "rebuild": True})
    await agent.call(ctx, router, agent.SET_SNAT, {"snats": tables.snats, "rebuild": True})
    await agent.call(ctx, router, agent.CREATE_EIP, {"eips": tables.eips, "rebuild": True})
    await agent.call(
        ctx, router, agent.CREATE_PORT_FORWARDING, {"rules": tables.rules, "rebuild": True}
    )
    await agent.call(ctx, router, agent.REFRESH_LB, {"lbs": tables.lbs, "rebuild": True})


ROUTER_FLOWS: dict[str, type[Flow[RouterCtx]]] = {
    "select-virtual-router-offering": SelectVirtualRouterOffering,
    "create-virtual-router-vm": CreateVirtualRouterVm,
    "create-virtual-router-record": CreateVirtualRouterRecord,
    "start-virtual-router-vm": StartVirtualRouterVm,
    "connect-virtual-router": ConnectVirtualRouter,
}
