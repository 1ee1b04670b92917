"""Port-forwarding API messages (ZStack's names, paths and fields)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from zstackpy.api.messages import APICreateMessage, APIMessage, APIQueryMessage, APIReply, ApiSpec
from zstackpy.services.portforwarding.messages import (
    PORT_FORWARDING_SERVICE,
    PortForwardingRuleInventory,
)
from zstackpy.services.vm.messages import VmNicInventory

_PKG = "org.zstack.network.service.portforwarding"
Port = Field(ge=1, le=65535)


class PortForwardingRuleEvent(APIReply):
    inventory: PortForwardingRuleInventory | None = None


class APICreatePortForwardingRuleMsg(APICreateMessage):
    api_service: ClassVar[str] = PORT_FORWARDING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreatePortForwardingRule",
        java_class=f"{_PKG}.APICreatePortForwardingRuleMsg",
        method="POST",
        path="/port-forwarding",
        body_key="params",
        result_java_class=f"{_PKG}.APICreatePortForwardingRuleEvent",
        creates="PortForwardingRuleVO",
        summary="Forward a port range of a VIP to a VM NIC (attached at once if one is named)",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    vip_uuid: str
    vip_port_start: int = Port
    vip_port_end: int | None = Field(None, ge=1, le=65535)
    private_port_start: int | None = Field(None, ge=1, le=65535)
    private_port_end: int | None = Field(None, ge=1, le=65535)
    protocol_type: Literal["TCP", "UDP"]
    vm_nic_uuid: str | None = None
    allowed_cidr: str | None = None


class APIDeletePortForwardingRuleMsg(APIMessage):
    api_service: ClassVar[str] = PORT_FORWARDING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeletePortForwardingRule",
        java_class=f"{_PKG}.APIDeletePortForwardingRuleMsg",
        method="DELETE",
        path="/port-forwarding/{uuid}",
        result_java_class=f"{_PKG}.APIDeletePortForwardingRuleEvent",
        summary="Delete a port-forwarding rule (detached first); its ports of the VIP are free",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIAttachPortForwardingRuleMsg(APIMessage):
    api_service: ClassVar[str] = PORT_FORWARDING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AttachPortForwardingRule",
        java_class=f"{_PKG}.APIAttachPortForwardingRuleMsg",
        method="POST",
        path="/port-forwarding/{ruleUuid}/vm-instances/nics/{vmNicUuid}",
        body_key="params",
        result_java_class=f"{_PKG}.APIAttachPortForwardingRuleEvent",
        summary="Attach a port-forwarding rule to a VM NIC",
    )
    route_by: ClassVar[str | None] = "rule_uuid"
    rule_uuid: str
    vm_nic_uuid: str


class APIDetachPortForwardingRuleMsg(APIMessage):
    api_service: ClassVar[str] = PORT_FORWARDING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DetachPortForwardingRule",
        java_class=f"{_PKG}.APIDetachPortForwardingRuleMsg",
        method="DELETE",
        path="/port-forwarding/{uuid}/vm-instances/nics",
        result_java_class=f"{_PKG}.APIDetachPortForwardingRuleEvent",
        summary="Detach a port-forwarding rule from its NIC",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class APIUpdatePortForwardingRuleMsg(APIMessage):
    api_service: ClassVar[str] = PORT_FORWARDING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdatePortForwardingRule",
        java_class=f"{_PKG}.APIUpdatePortForwardingRuleMsg",
        method="PUT",
        path="/port-forwarding/{uuid}/actions",
        body_key="updatePortForwardingRule",
        result_java_class=f"{_PKG}.APIUpdatePortForwardingRuleEvent",
        summary="Change a port-forwarding rule's name or description",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIChangePortForwardingRuleStateMsg(APIMessage):
    api_service: ClassVar[str] = PORT_FORWARDING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangePortForwardingRuleState",
        java_class=f"{_PKG}.APIChangePortForwardingRuleStateMsg",
        method="PUT",
        path="/port-forwarding/{uuid}/actions",
        body_key="changePortForwardingRuleState",
        result_java_class=f"{_PKG}.APIChangePortForwardingRuleStateEvent",
        summary="Enable or disable a port-forwarding rule (a disabled one stays attached, "
        "off its host or router)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIGetPortForwardingAttachableVmNicsMsg(APIMessage):
    api_service: ClassVar[str] = PORT_FORWARDING_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetPortForwardingAttachableVmNics",
        java_class=f"{_PKG}.APIGetPortForwardingAttachableVmNicsMsg",
        method="GET",
        path="/port-forwarding/{ruleUuid}/vm-instances/candidate-nics",
        is_async=False,
        result_java_class=f"{_PKG}.APIGetPortForwardingAttachableVmNicsReply",
        summary="NICs the rule could be attached to: with the PortForwarding service, off "
        "the VIP's network, without a rule on the same guest ports",
    )
    route_by: ClassVar[str | None] = "rule_uuid"
    rule_uuid: str


class APIGetPortForwardingAttachableVmNicsReply(APIReply):
    inventories: list[VmNicInventory] = Field(default_factory=list)


class APIQueryPortForwardingRuleMsg(APIQueryMessage):
    query_of: ClassVar[str] = "PortForwardingRule"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryPortForwardingRule",
        java_class=f"{_PKG}.APIQueryPortForwardingRuleMsg",
        method="GET",
        path="/port-forwarding",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryPortForwardingRuleReply",
        summary="Query port-forwarding rules",
    )
