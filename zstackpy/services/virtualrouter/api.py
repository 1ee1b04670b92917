"""The virtual-router API: offerings, appliance queries, reconnect (ZStack's names and
paths)."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from zstackpy.api.messages import APICreateMessage, APIMessage, APIQueryMessage, APIReply, ApiSpec
from zstackpy.services.offering.messages import (
    INT32_MAX,
    INT32_MIN,
    MAX_BYTES,
    MAX_CPU_NUM,
    MIN_MEMORY_SIZE,
)
from zstackpy.services.virtualrouter.messages import (
    VIRTUAL_ROUTER_SERVICE,
    ApplianceVmInventory,
    VirtualRouterOfferingInventory,
)

_PKG = "org.zstack.network.service.virtualrouter"


class VirtualRouterOfferingEvent(APIReply):
    inventory: VirtualRouterOfferingInventory | None = None


class ApplianceVmEvent(APIReply):
    inventory: ApplianceVmInventory | None = None


class APICreateVirtualRouterOfferingMsg(APICreateMessage):
    api_service: ClassVar[str] = VIRTUAL_ROUTER_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateVirtualRouterOffering",
        java_class=f"{_PKG}.APICreateVirtualRouterOfferingMsg",
        method="POST",
        path="/instance-offerings/virtual-routers",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateVirtualRouterOfferingEvent",
        creates="InstanceOfferingVO",
        admin_only=True,
        summary="Create a virtual-router offering: the appliance's sizes, image, and "
        "management and public L3 networks in a zone",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    zone_uuid: str
    management_network_uuid: str
    public_network_uuid: str | None = None  # None: the management network
    image_uuid: str
    is_default: bool = False
    cpu_num: int = Field(ge=1, le=MAX_CPU_NUM)
    memory_size: int = Field(ge=MIN_MEMORY_SIZE, le=MAX_BYTES)
    reserved_memory_size: int = Field(0, ge=0, le=MAX_BYTES)
    allocator_strategy: str | None = Field(None, min_length=1, max_length=128)
    sort_key: int = Field(0, ge=INT32_MIN, le=INT32_MAX)
    type: str | None = Field(None, max_length=32)  # always VirtualRouter

    @model_validator(mode="after")
    def _reserved_fits(self) -> Self:
        if self.reserved_memory_size > self.memory_size:
            raise ValueError("reservedMemorySize must not exceed memorySize")
        return self


class APIQueryVirtualRouterOfferingMsg(APIQueryMessage):
    query_of: ClassVar[str] = "VirtualRouterOffering"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryVirtualRouterOffering",
        java_class=f"{_PKG}.APIQueryVirtualRouterOfferingMsg",
        method="GET",
        path="/instance-offerings/virtual-routers",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryVirtualRouterOfferingReply",
        summary="Query virtual-router offerings",
    )


class APIQueryApplianceVmMsg(APIQueryMessage):
    query_of: ClassVar[str] = "ApplianceVm"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryApplianceVm",
        java_class="org.zstack.appliancevm.APIQueryApplianceVmMsg",
        method="GET",
        path="/vm-instances/appliances",
        is_async=False,
        result_java_class="org.zstack.appliancevm.APIQueryApplianceVmReply",
        summary="Query appliance VMs (virtual routers)",
    )


class APIQueryVirtualRouterVmMsg(APIQueryMessage):
    query_of: ClassVar[str] = "VirtualRouterVm"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryVirtualRouterVm",
        java_class=f"{_PKG}.APIQueryVirtualRouterVmMsg",
        method="GET",
        path="/vm-instances/appliances/virtual-routers",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryVirtualRouterVmReply",
        summary="Query virtual routers",
    )


class APIReconnectVirtualRouterMsg(APIMessage):
    api_service: ClassVar[str] = VIRTUAL_ROUTER_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ReconnectVirtualRouter",
        java_class=f"{_PKG}.APIReconnectVirtualRouterMsg",
        method="PUT",
        path="/vm-instances/appliances/virtual-routers/{vmInstanceUuid}/actions",
        body_key="reconnectVirtualRouter",
        result_java_class=f"{_PKG}.APIReconnectVirtualRouterEvent",
        admin_only=True,
        summary="Reconnect a virtual router: boot its agent again if needed and send it "
        "every service it serves",
    )
    vm_instance_uuid: str
