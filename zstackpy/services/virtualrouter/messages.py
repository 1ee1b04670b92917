"""The virtual-router service's contract: codes, inventories, and what the provider asks
the service (a Connected router for a guest L3 network)."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, Field

from zstackpy.core.bus.message import NeedReplyMessage, Reply
from zstackpy.services.offering.messages import InstanceOfferingInventory
from zstackpy.services.vm.messages import VmInstanceInventory

VIRTUAL_ROUTER_SERVICE = "virtualRouter"
VIRTUAL_ROUTER = "VirtualRouter"  # the provider type, the offering type, the appliance type
APPLIANCE_VM = "ApplianceVm"  # the VM type of appliances
APPLIANCE_AGENT_PORT = 7272


class VirtualRouterErr(StrEnum):
    """Codes of the virtual-router domain (listed in docs/errors.md)."""

    NO_OFFERING = "VR.1001"  # no virtual-router offering in the guest L3 network's zone
    BAD_OFFERING = "VR.1002"  # an offering's networks or image do not fit (zone, category)
    NOT_CONNECTED = "VR.1003"  # the appliance could not be made ready (boot, agent, config)


class ApplianceStatus(StrEnum):
    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    DISCONNECTED = "Disconnected"


class VirtualRouterOfferingInventory(InstanceOfferingInventory):
    management_network_uuid: str
    public_network_uuid: str
    zone_uuid: str
    is_default: bool
    image_uuid: str


class ApplianceVmInventory(VmInstanceInventory):
    appliance_vm_type: str
    management_network_uuid: str
    default_route_l3_network_uuid: str
    status: str
    agent_port: int
    ha_status: str = "NoHa"


class VirtualRouterVmInventory(ApplianceVmInventory):
    public_network_uuid: str
    virtual_router_vips: list[str] = Field(default_factory=list)


class RouterView(BaseModel):
    """A Connected virtual router, as the provider reaches it."""

    uuid: str
    guest_l3_network_uuid: str
    management_ip: str
    agent_port: int
    token: str
    public_ip: str
    public_mac: str
    guest_ip: str
    guest_mac: str
    guest_netmask: str
    guest_gateway: str  # the guest L3 network's gateway, which the appliance holds
    # The public network's: the appliance's route to it and its default route.
    public_netmask: str = ""
    public_gateway: str = ""


class GetVirtualRouterMsg(NeedReplyMessage):
    """The Connected virtual router serving ``l3_network_uuid``, made (or brought back)
    first when ``ensure`` and it has none. Handled in the L3's router queue on its owner
    node. VR.1001 when the zone has no offering, VR.1003 when the router cannot be made
    ready; with ``ensure`` false, an answer without router when it has none."""

    service: ClassVar[str] = VIRTUAL_ROUTER_SERVICE
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str
    ensure: bool = True
    reconnect: bool = False  # boot the agent again if it does not answer, re-send everything
    # The caller could not reach it: if it does not answer a ping, bring it back now
    # instead of waiting for the monitor.
    unreachable: bool = False


class GetVirtualRouterReply(Reply):
    router: RouterView | None = None


class DestroyVirtualRouterMsg(NeedReplyMessage):
    """The router of ``l3_network_uuid`` goes (its guest L3 no longer takes services from
    it, or the L3 is deleted); none: success. ``if_unused``: only if the L3 takes no
    service from it when the message's turn comes (a detach sends it without waiting:
    the router's delete releases its addresses, which waits for the L3 the detach holds).
    """

    service: ClassVar[str] = VIRTUAL_ROUTER_SERVICE
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str
    if_unused: bool = False
