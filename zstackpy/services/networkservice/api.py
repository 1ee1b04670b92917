"""Network-service API messages: which provider serves which service types of an L3
network, and the queries of providers and of those choices."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zstackpy.api.messages import APIMessage, APIQueryMessage, APIReply, ApiSpec
from zstackpy.services.network.inventories import L3NetworkInventory
from zstackpy.services.networkservice.messages import NETWORK_SERVICE

_PKG = "org.zstack.header.network.service"

# provider uuid -> service types; a query string carries ``networkServices.<uuid>=A,B``.
ServiceMap = dict[str, list[str] | str]


class L3NetworkServicesEvent(APIReply):
    inventory: L3NetworkInventory | None = None


class APIAttachNetworkServiceToL3NetworkMsg(APIMessage):
    api_service: ClassVar[str] = NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AttachNetworkServiceToL3Network",
        java_class=f"{_PKG}.APIAttachNetworkServiceToL3NetworkMsg",
        method="POST",
        path="/l3-networks/{l3NetworkUuid}/network-services",
        body_key="params",
        result_java_class=f"{_PKG}.APIAttachNetworkServiceToL3NetworkEvent",
        summary="Choose the providers of service types (DHCP, Eip, SecurityGroup, ...) of "
        "an L3 network",
    )
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str
    network_services: ServiceMap = Field(min_length=1)


class APIDetachNetworkServiceFromL3NetworkMsg(APIMessage):
    api_service: ClassVar[str] = NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DetachNetworkServiceFromL3Network",
        java_class=f"{_PKG}.APIDetachNetworkServiceFromL3NetworkMsg",
        method="DELETE",
        path="/l3-networks/{l3NetworkUuid}/network-services",
        result_java_class=f"{_PKG}.APIDetachNetworkServiceFromL3NetworkEvent",
        summary="Stop serving service types on an L3 network (refused while in use)",
    )
    route_by: ClassVar[str | None] = "l3_network_uuid"
    l3_network_uuid: str
    network_services: ServiceMap | None = None
    # ZStack's ``service``: one type, whichever provider serves it (``service`` is taken).
    service_type: str | None = Field(None, alias="service")


class APIGetNetworkServiceTypesMsg(APIMessage):
    api_service: ClassVar[str] = NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetNetworkServiceTypes",
        java_class=f"{_PKG}.APIGetNetworkServiceTypesMsg",
        method="GET",
        path="/network-services/types",
        is_async=False,
        result_java_class=f"{_PKG}.APIGetNetworkServiceTypesReply",
        summary="The service types each provider type serves",
    )


class APIGetNetworkServiceTypesReply(APIReply):
    types: dict[str, list[str]] = Field(default_factory=dict)


class APIGetVmNicAttachedNetworkServiceMsg(APIMessage):
    api_service: ClassVar[str] = NETWORK_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="GetVmNicAttachedNetworkService",
        java_class=f"{_PKG}.APIGetVmNicAttachedNetworkServiceMsg",
        method="GET",
        path="/vm-instances/nics/{vmNicUuid}/attached-networkservices",
        is_async=False,
        result_java_class=f"{_PKG}.APIGetVmNicAttachedNetworkServiceReply",
        summary="The network service types the NIC's L3 network serves it",
    )
    route_by: ClassVar[str | None] = "vm_nic_uuid"
    vm_nic_uuid: str


class APIGetVmNicAttachedNetworkServiceReply(APIReply):
    network_services: list[str] = Field(default_factory=list)


class APIQueryNetworkServiceProviderMsg(APIQueryMessage):
    query_of: ClassVar[str] = "NetworkServiceProvider"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryNetworkServiceProvider",
        java_class=f"{_PKG}.APIQueryNetworkServiceProviderMsg",
        method="GET",
        path="/network-services/providers",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryNetworkServiceProviderReply",
        summary="Query network-service providers",
    )


class APIQueryNetworkServiceL3NetworkRefMsg(APIQueryMessage):
    query_of: ClassVar[str] = "NetworkServiceL3NetworkRef"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryNetworkServiceL3NetworkRef",
        java_class=f"{_PKG}.APIQueryNetworkServiceL3NetworkRefMsg",
        method="GET",
        path="/l3-networks/network-services/refs",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryNetworkServiceL3NetworkRefReply",
        summary="Query which provider serves which type on which L3 network",
    )
