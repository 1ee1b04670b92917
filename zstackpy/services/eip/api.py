"""EIP API messages (ZStack's names, paths and fields)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from zstackpy.api.messages import APICreateMessage, APIMessage, APIQueryMessage, APIReply, ApiSpec
from zstackpy.services.eip.messages import EIP_SERVICE, EipInventory
from zstackpy.services.vm.messages import VmNicInventory

_PKG = "org.zstack.network.service.eip"


class EipEvent(APIReply):
    inventory: EipInventory | None = None


class APICreateEipMsg(APICreateMessage):
    api_service: ClassVar[str] = EIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateEip",
        java_class=f"{_PKG}.APICreateEipMsg",
        method="POST",
        path="/eips",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateEipEvent",
        creates="EipVO",
        summary="Create an EIP on a VIP, attached to a VM NIC at once if one is named",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    vip_uuid: str
    vm_nic_uuid: str | None = None
    used_ip_uuid: str | None = None


class APIDeleteEipMsg(APIMessage):
    api_service: ClassVar[str] = EIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteEip",
        java_class=f"{_PKG}.APIDeleteEipMsg",
        method="DELETE",
        path="/eips/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteEipEvent",
        summary="Delete an EIP (detached from its NIC first); its VIP is free again",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIAttachEipMsg(APIMessage):
    api_service: ClassVar[str] = EIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AttachEip",
        java_class=f"{_PKG}.APIAttachEipMsg",
        method="POST",
        path="/eips/{eipUuid}/vm-instances/nics/{vmNicUuid}",
        body_key="params",
        result_java_class=f"{_PKG}.APIAttachEipEvent",
        summary="Attach an EIP to a VM NIC (NATed on the VM's host while it runs)",
    )
    route_by: ClassVar[str | None] = "eip_uuid"
    eip_uuid: str
    vm_nic_uuid: str
    used_ip_uuid: str | None = None


class APIDetachEipMsg(APIMessage):
    api_service: ClassVar[str] = EIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DetachEip",
        java_class=f"{_PKG}.APIDetachEipMsg",
        method="DELETE",
        path="/eips/{uuid}/vm-instances/nics",
        result_java_class=f"{_PKG}.APIDetachEipEvent",
        summary="Detach an EIP from its NIC (revoked on the VM's host)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIUpdateEipMsg(APIMessage):
    api_service: ClassVar[str] = EIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateEip",
        java_class=f"{_PKG}.APIUpdateEipMsg",
        method="PUT",
        path="/eips/{uuid}/actions",
        body_key="updateEip",
        result_java_class=f"{_PKG}.APIUpdateEipEvent",
        summary="Change an EIP's name or description",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIChangeEipStateMsg(APIMessage):
    api_service: ClassVar[str] = EIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeEipState",
        java_class=f"{_PKG}.APIChangeEipStateMsg",
        method="PUT",
        path="/eips/{uuid}/actions",
        body_key="changeEipState",
        result_java_class=f"{_PKG}.APIChangeEipStateEvent",
        summary="Enable or disable an EIP (a disabled one stays attached, off its host)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIGetEipAttachableVmNicsMsg(APIMessage):
    api_service: ClassVar[str] = EIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetEipAttachableVmNics",
        java_class=f"{_PKG}.APIGetEipAttachableVmNicsMsg",
        method="GET",
        path="/eips/{eipUuid}/vm-instances/candidate-nics",
        is_async=False,
        result_java_class=f"{_PKG}.APIGetEipAttachableVmNicsReply",
        summary="NICs the EIP could be attached to: with the Eip service, off the VIP's "
        "network, without an EIP",
    )
    route_by: ClassVar[str | None] = "eip_uuid"
    eip_uuid: str
    vm_uuid: str | None = None


class APIGetEipAttachableVmNicsReply(APIReply):
    inventories: list[VmNicInventory] = Field(default_factory=list)
    more: bool = False
    start: int = 0


class APIGetVmNicAttachableEipsMsg(APIMessage):
    api_service: ClassVar[str] = EIP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetVmNicAttachableEips",
        java_class=f"{_PKG}.APIGetVmNicAttachableEipsMsg",
        method="GET",
        path="/vm-instances/nics/{vmNicUuid}/candidate-eips",
        is_async=False,
        result_java_class=f"{_PKG}.APIGetVmNicAttachableEipsReply",
        summary="EIPs the NIC could be given: unattached, on a VIP off the NIC's network "
        "(none when the NIC has an EIP or its network no Eip service)",
    )
    route_by: ClassVar[str | None] = "vm_nic_uuid"
    vm_nic_uuid: str
    ip_version: int | None = None
    limit: int | None = Field(None, ge=0)
    start: int = Field(0, ge=0)

    @field_validator("ip_version")
    @classmethod
    def _ip_version(cls, value: int | None) -> int | None:
        if value not in (None, 4, 6):
            raise ValueError("ipVersion must be 4 or 6")
        return value


class APIGetVmNicAttachableEipsReply(APIReply):
    inventories: list[EipInventory] = Field(default_factory=list)


class APIQueryEipMsg(APIQueryMessage):
    query_of: ClassVar[str] = "Eip"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryEip",
        java_class=f"{_PKG}.APIQueryEipMsg",
        method="GET",
        path="/eips",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryEipReply",
        summary="Query EIPs",
    )
