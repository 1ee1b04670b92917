"""Security-group API messages (ZStack's names, paths and fields)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from zstackpy.api.messages import (
    APICreateMessage,
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
    WireModel,
)
from zstackpy.services.securitygroup.messages import (
    SECURITY_GROUP_MEMBER_SERVICE,
    SECURITY_GROUP_SERVICE,
)
from zstackpy.services.securitygroup.query import SecurityGroupInventory
from zstackpy.services.vm.messages import VmNicInventory

_PKG = "org.zstack.network.securitygroup"


class SecurityGroupEvent(APIReply):
    inventory: SecurityGroupInventory | None = None


class SecurityGroupRuleAO(WireModel):
    """One rule as a client asks for it. Ports: a TCP/UDP range (0-65535); ICMP and ALL
    take none (-1). The peer: ``allowedCidr`` or ``remoteSecurityGroupUuid`` (its members'
    addresses), not both; neither means any address."""

    type: Literal["Ingress", "Egress"]
    protocol: Literal["TCP", "UDP", "ICMP", "ALL"] = "ALL"
    start_port: int | None = None
    end_port: int | None = None
    allowed_cidr: str | None = None
    remote_security_group_uuid: str | None = None
    ip_version: Literal[4] = 4
    action: Literal["ACCEPT", "DROP"] = "ACCEPT"
    description: str | None = Field(None, max_length=2048)


class APICreateSecurityGroupMsg(APICreateMessage):
    api_service: ClassVar[str] = SECURITY_GROUP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateSecurityGroup",
        java_class=f"{_PKG}.APICreateSecurityGroupMsg",
        method="POST",
        path="/security-groups",
        body_key="params",
        result_java_class=f"{_PKG}.APICreateSecurityGroupEvent",
        creates="SecurityGroupVO",
        summary="Create a security group (no rules, no members)",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    ip_version: Literal[4] = 4


class APIDeleteSecurityGroupMsg(APIMessage):
    api_service: ClassVar[str] = SECURITY_GROUP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteSecurityGroup",
        java_class=f"{_PKG}.APIDeleteSecurityGroupMsg",
        method="DELETE",
        path="/security-groups/{uuid}",
        result_java_class=f"{_PKG}.APIDeleteSecurityGroupEvent",
        summary="Delete a security group: its rules leave every host of its members",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIUpdateSecurityGroupMsg(APIMessage):
    api_service: ClassVar[str] = SECURITY_GROUP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateSecurityGroup",
        java_class=f"{_PKG}.APIUpdateSecurityGroupMsg",
        method="PUT",
        path="/security-groups/{uuid}/actions",
        body_key="updateSecurityGroup",
        result_java_class=f"{_PKG}.APIUpdateSecurityGroupEvent",
        summary="Change a security group's name or description",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)


class APIChangeSecurityGroupStateMsg(APIMessage):
    api_service: ClassVar[str] = SECURITY_GROUP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ChangeSecurityGroupState",
        java_class=f"{_PKG}.APIChangeSecurityGroupStateMsg",
        method="PUT",
        path="/security-groups/{uuid}/actions",
        body_key="changeSecurityGroupState",
        result_java_class=f"{_PKG}.APIChangeSecurityGroupStateEvent",
        summary="Enable or disable a security group (a disabled group's rules leave the hosts)",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    state_event: Literal["enable", "disable"]


class APIAddSecurityGroupRuleMsg(APIMessage):
    api_service: ClassVar[str] = SECURITY_GROUP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AddSecurityGroupRule",
        java_class=f"{_PKG}.APIAddSecurityGroupRuleMsg",
        method="POST",
        path="/security-groups/{securityGroupUuid}/rules",
        body_key="params",
        result_java_class=f"{_PKG}.APIAddSecurityGroupRuleEvent",
        summary="Add rules to a security group; the hosts of its members get them",
    )
    route_by: ClassVar[str | None] = "security_group_uuid"
    security_group_uuid: str
    rules: list[SecurityGroupRuleAO] = Field(min_length=1, max_length=1000)
    # Every rule once per group named here, that group's members as its peers.
    remote_security_group_uuids: list[str] = Field(default_factory=list)
    priority: int | None = None


class APIDeleteSecurityGroupRuleMsg(APIMessage):
    api_service: ClassVar[str] = SECURITY_GROUP_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteSecurityGroupRule",
        java_class=f"{_PKG}.APIDeleteSecurityGroupRuleMsg",
        method="DELETE",
        path="/security-groups/rules",
        result_java_class=f"{_PKG}.APIDeleteSecurityGroupRuleEvent",
        summary="Delete rules (of one security group)",
    )
    rule_uuids: list[str] = Field(min_length=1)


class APIAttachSecurityGroupToL3NetworkMsg(APIMessage):
    api_service: ClassVar[str] = SECURITY_GROUP_MEMBER_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AttachSecurityGroupToL3Network",
        java_class=f"{_PKG}.APIAttachSecurityGroupToL3NetworkMsg",
        method="POST",
        path="/security-groups/{securityGroupUuid}/l3-networks/{l3NetworkUuid}",
        body_key="params",
        result_java_class=f"{_PKG}.APIAttachSecurityGroupToL3NetworkEvent",
        summary="Let NICs of an L3 network (with the SecurityGroup service) join the group",
    )
    route_by: ClassVar[str | None] = "security_group_uuid"
    security_group_uuid: str
    l3_network_uuid: str


class APIDetachSecurityGroupFromL3NetworkMsg(APIMessage):
    api_service: ClassVar[str] = SECURITY_GROUP_MEMBER_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DetachSecurityGroupFromL3Network",
        java_class=f"{_PKG}.APIDetachSecurityGroupFromL3NetworkMsg",
        method="DELETE",
        path="/security-groups/{securityGroupUuid}/l3-networks/{l3NetworkUuid}",
        result_java_class=f"{_PKG}.APIDetachSecurityGroupFromL3NetworkEvent",
        summary="Detach a group from an L3 network; its NICs there leave the group",
    )
    route_by: ClassVar[str | None] = "security_group_uuid"
    security_group_uuid: str
    l3_network_uuid: str


class APIAddVmNicToSecurityGroupMsg(APIMessage):
    api_service: ClassVar[str] = SECURITY_GROUP_MEMBER_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AddVmNicToSecurityGroup",
        java_class=f"{_PKG}.APIAddVmNicToSecurityGroupMsg",
        method="POST",
        path="/security-groups/{securityGroupUuid}/vm-instances/nics",
        body_key="params",
        result_java_class=f"{_PKG}.APIAddVmNicToSecurityGroupEvent",
        summary="Make VM NICs members of a group; their hosts get its rules",
    )
    route_by: ClassVar[str | None] = "security_group_uuid"
    security_group_uuid: str
    vm_nic_uuids: list[str] = Field(min_length=1)


class APIDeleteVmNicFromSecurityGroupMsg(APIMessage):
    api_service: ClassVar[str] = SECURITY_GROUP_MEMBER_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteVmNicFromSecurityGroup",
        java_class=f"{_PKG}.APIDeleteVmNicFromSecurityGroupMsg",
        method="DELETE",
        path="/security-groups/{securityGroupUuid}/vm-instances/nics",
        result_java_class=f"{_PKG}.APIDeleteVmNicFromSecurityGroupEvent",
        summary="Take VM NICs out of a group; its rules leave their hosts",
    )
    route_by: ClassVar[str | None] = "security_group_uuid"
    security_group_uuid: str
    vm_nic_uuids: list[str] = Field(min_length=1)


class APIGetCandidateVmNicForSecurityGroupMsg(APIMessage):
    api_service: ClassVar[str] = SECURITY_GROUP_MEMBER_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetCandidateVmNicForSecurityGroup",
        java_class=f"{_PKG}.APIGetCandidateVmNicForSecurityGroupMsg",
        method="GET",
        path="/security-groups/{securityGroupUuid}/vm-instances/candidate-nics",
        is_async=False,
        result_java_class=f"{_PKG}.APIGetCandidateVmNicForSecurityGroupReply",
        summary="NICs that could join the group: on its L3 networks, not members yet",
    )
    route_by: ClassVar[str | None] = "security_group_uuid"
    security_group_uuid: str


class VmNicsReply(APIReply):
    inventories: list[VmNicInventory] = Field(default_factory=list)


class APIQuerySecurityGroupMsg(APIQueryMessage):
    query_of: ClassVar[str] = "SecurityGroup"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QuerySecurityGroup",
        java_class=f"{_PKG}.APIQuerySecurityGroupMsg",
        method="GET",
        path="/security-groups",
        is_async=False,
        result_java_class=f"{_PKG}.APIQuerySecurityGroupReply",
        summary="Query security groups",
    )


class APIQuerySecurityGroupRuleMsg(APIQueryMessage):
    query_of: ClassVar[str] = "SecurityGroupRule"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QuerySecurityGroupRule",
        java_class=f"{_PKG}.APIQuerySecurityGroupRuleMsg",
        method="GET",
        path="/security-groups/rules",
        is_async=False,
        result_java_class=f"{_PKG}.APIQuerySecurityGroupRuleReply",
        summary="Query security-group rules",
    )


class APIQueryVmNicInSecurityGroupMsg(APIQueryMessage):
    query_of: ClassVar[str] = "VmNicSecurityGroupRef"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryVmNicInSecurityGroup",
        java_class=f"{_PKG}.APIQueryVmNicInSecurityGroupMsg",
        method="GET",
        path="/security-groups/vm-instances/nics",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryVmNicInSecurityGroupReply",
        summary="Query which NICs are in which security groups",
    )
