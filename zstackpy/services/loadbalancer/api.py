"""The load-balancer API (ZStack's names, paths and inventories)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from zstackpy.api.messages import APICreateMessage, APIMessage, APIQueryMessage, APIReply, ApiSpec
from zstackpy.services.loadbalancer.messages import (
    LOAD_BALANCER_SERVICE,
    LoadBalancerInventory,
    LoadBalancerListenerInventory,
)

_PKG = "org.zstack.network.service.lb"
Method = Literal["GET", "POST", "PUT", "DELETE"]


class LoadBalancerEvent(APIReply):
    inventory: LoadBalancerInventory | None = None


class LoadBalancerListenerEvent(APIReply):
    inventory: LoadBalancerListenerInventory | None = None


def _spec(name: str, method: Method, path: str, summary: str, **kw: object) -> ApiSpec:
    return ApiSpec(
        name=name,
        java_class=f"{_PKG}.API{name}Msg",
        method=method,
        path=path,
        result_java_class=f"{_PKG}.API{name}Event",
        summary=summary,
        **kw,  # type: ignore[arg-type]  # the keys are ApiSpec's fields
    )


class APICreateLoadBalancerMsg(APICreateMessage):
    api_service: ClassVar[str] = LOAD_BALANCER_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "CreateLoadBalancer",
        "POST",
        "/load-balancers",
        "Create a load balancer on a VIP (the VIP is then the load balancer's alone)",
        body_key="params",
        creates="LoadBalancerVO",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    vip_uuid: str
    type: Literal["Shared"] = "Shared"


class APIDeleteLoadBalancerMsg(APIMessage):
    api_service: ClassVar[str] = LOAD_BALANCER_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "DeleteLoadBalancer",
        "DELETE",
        "/load-balancers/{uuid}",
        "Delete a load balancer with its listeners; its VIP is free again",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APICreateLoadBalancerListenerMsg(APICreateMessage):
    api_service: ClassVar[str] = LOAD_BALANCER_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "CreateLoadBalancerListener",
        "POST",
        "/load-balancers/{loadBalancerUuid}/listeners",
        "Listen on a port of the load balancer's VIP and spread to its backends' instance port",
        body_key="params",
        creates="LoadBalancerListenerVO",
    )
    route_by: ClassVar[str | None] = "load_balancer_uuid"
    load_balancer_uuid: str
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    load_balancer_port: int = Field(ge=1, le=65535)
    instance_port: int | None = Field(None, ge=1, le=65535)  # None: the listener's port
    protocol: Literal["tcp", "udp", "http", "https"] = "tcp"


class APIDeleteLoadBalancerListenerMsg(APIMessage):
    api_service: ClassVar[str] = LOAD_BALANCER_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "DeleteLoadBalancerListener",
        "DELETE",
        "/load-balancers/listeners/{uuid}",
        "Delete a listener (its backends leave it)",
    )
    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIAddVmNicToLoadBalancerMsg(APIMessage):
    api_service: ClassVar[str] = LOAD_BALANCER_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "AddVmNicToLoadBalancer",
        "POST",
        "/load-balancers/listeners/{listenerUuid}/vm-instances/nics",
        "Add VM NICs to a listener's backends (all of a load balancer's backends are on "
        "one L3 network, which serves LoadBalancer)",
        body_key="params",
    )
    listener_uuid: str
    vm_nic_uuids: list[str] = Field(min_length=1, max_length=1000)


class APIRemoveVmNicFromLoadBalancerMsg(APIMessage):
    api_service: ClassVar[str] = LOAD_BALANCER_SERVICE
    api: ClassVar[ApiSpec | None] = _spec(
        "RemoveVmNicFromLoadBalancer",
        "DELETE",
        "/load-balancers/listeners/{listenerUuid}/vm-instances/nics",
        "Remove VM NICs from a listener's backends",
    )
    listener_uuid: str
    vm_nic_uuids: list[str] = Field(min_length=1, max_length=1000)


class APIQueryLoadBalancerMsg(APIQueryMessage):
    query_of: ClassVar[str] = "LoadBalancer"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryLoadBalancer",
        java_class=f"{_PKG}.APIQueryLoadBalancerMsg",
        method="GET",
        path="/load-balancers",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryLoadBalancerReply",
        summary="Query load balancers",
    )


class APIQueryLoadBalancerListenerMsg(APIQueryMessage):
    query_of: ClassVar[str] = "LoadBalancerListener"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryLoadBalancerListener",
        java_class=f"{_PKG}.APIQueryLoadBalancerListenerMsg",
        method="GET",
        path="/load-balancers/listeners",
        is_async=False,
        result_java_class=f"{_PKG}.APIQueryLoadBalancerListenerReply",
        summary="Query load-balancer listeners",
    )
