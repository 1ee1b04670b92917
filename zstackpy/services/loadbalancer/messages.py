"""The load-balancer service's contract: codes, inventories, what backends are given and
what other services ask it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, Field

from zstackpy.api.messages import Inventory
from zstackpy.core.bus.message import NeedReplyMessage, Reply

LOAD_BALANCER_SERVICE = "loadBalancer"
LOAD_BALANCER_TYPE = "LoadBalancerVO"
LISTENER_TYPE = "LoadBalancerListenerVO"
LOAD_BALANCER_USE = "LoadBalancer"  # the VIP's useFor


class LoadBalancerErr(StrEnum):
    """Codes of the load-balancer domain (listed in docs/errors.md)."""

    PORT_TAKEN = "LB.1001"  # another listener of the load balancer has the port
    OTHER_NETWORK = "LB.1002"  # a backend NIC on another L3 network than the others
    NIC_UNUSABLE = "LB.1003"  # a NIC on the VIP's own network, or of an appliance


class LoadBalancerListenerVmNicRefInventory(Inventory):
    id: int
    listener_uuid: str
    vm_nic_uuid: str
    status: str
    create_date: datetime
    last_op_date: datetime


class LoadBalancerListenerInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    load_balancer_uuid: str
    instance_port: int
    load_balancer_port: int
    protocol: str
    create_date: datetime
    last_op_date: datetime
    vm_nic_refs: list[LoadBalancerListenerVmNicRefInventory] = Field(default_factory=list)


class LoadBalancerInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    state: str
    type: str
    vip_uuid: str
    create_date: datetime
    last_op_date: datetime
    listeners: list[LoadBalancerListenerInventory] = Field(default_factory=list)


class BackendNic(BaseModel):
    uuid: str
    ip: str | None
    mac: str


class ListenerTO(BaseModel):
    listener_uuid: str
    protocol: str
    load_balancer_port: int
    instance_port: int
    nics: list[BackendNic] = Field(default_factory=list)


class LoadBalancerTO(BaseModel):
    """A load balancer as a backend applies it: every listener with its backend NICs."""

    lb_uuid: str
    vip_ip: str
    vip_l3_network_uuid: str
    listeners: list[ListenerTO] = Field(default_factory=list)
    # Not the agent's: a load balancer whose VIP is Disabled is on no router.
    vip_enabled: bool = True

    def to_agent(self) -> dict[str, object]:
        return {
            "lbUuid": self.lb_uuid,
            "vipIp": self.vip_ip,
            "listeners": [
                {
                    "listenerUuid": li.listener_uuid,
                    "protocol": li.protocol,
                    "loadBalancerPort": li.load_balancer_port,
                    "instancePort": li.instance_port,
                    "nics": [{"uuid": n.uuid, "ip": n.ip, "mac": n.mac} for n in li.nics],
                }
                for li in self.listeners
            ],
        }


class GetL3LoadBalancersMsg(NeedReplyMessage):
    """The load balancers whose backend NICs are on ``l3_network_uuid`` (read on the
    asking node), for a backend that puts them all back (a router booted again)."""

    service: ClassVar[str] = LOAD_BALANCER_SERVICE
    l3_network_uuid: str


class GetL3LoadBalancersReply(Reply):
    load_balancers: list[LoadBalancerTO] = Field(default_factory=list)


class DeleteLoadBalancerMsg(NeedReplyMessage):
    """Delete a load balancer as part of its VIP's cascade, in its queue (the VIP is not
    released: it is going)."""

    service: ClassVar[str] = LOAD_BALANCER_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str


class DropLoadBalancerNicsMsg(NeedReplyMessage):
    """These NICs leave every listener (their VM is destroyed, or they are detached): one
    DropNicsFromLoadBalancerMsg per load balancer that has some."""

    service: ClassVar[str] = LOAD_BALANCER_SERVICE
    vm_nic_uuids: list[str]


class DropNicsFromLoadBalancerMsg(NeedReplyMessage):
    """These NICs leave every listener of the load balancer, in its queue."""

    service: ClassVar[str] = LOAD_BALANCER_SERVICE
    route_by: ClassVar[str | None] = "load_balancer_uuid"
    load_balancer_uuid: str
    vm_nic_uuids: list[str]


class ApplyVipStateToLoadBalancerMsg(NeedReplyMessage):
    """The load balancer's VIP is being disabled (``vip_enabled`` False: take it off its
    router) or was enabled (put it back), in its queue."""

    service: ClassVar[str] = LOAD_BALANCER_SERVICE
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    vip_enabled: bool
