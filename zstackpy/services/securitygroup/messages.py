"""Internal messages of the security-group service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from zstackpy.core.bus.message import NeedReplyMessage

SECURITY_GROUP_SERVICE = "securityGroup"  # groups and rules
SECURITY_GROUP_MEMBER_SERVICE = "securityGroupMember"  # L3 attachments and member NICs
SECURITY_GROUP_HOST_SERVICE = "securityGroupHost"  # hosts' rule sets; the provider


class NicOnHost(BaseModel):
    """A NIC about to be on the host (a VM arriving): counted before the database says so."""

    uuid: str
    vm_instance_uuid: str
    internal_name: str
    mac: str
    ip: str | None = None


class RefreshSecurityGroupHostMsg(NeedReplyMessage):
    """Send a host the whole rule set of the member NICs it runs (plus ``arriving``), in
    the host's ``sg-host`` queue on its owner node, less ``leaving``. Refreshes that wait
    together are served by one command: what it sends is read when it runs."""

    service: ClassVar[str] = SECURITY_GROUP_HOST_SERVICE
    route_by: ClassVar[str | None] = "host_uuid"
    host_uuid: str
    arriving: list[NicOnHost] = Field(default_factory=list)
    leaving: list[str] = Field(default_factory=list)  # NICs unplugged, rows not yet gone


class DropSecurityGroupNicsMsg(NeedReplyMessage):
    """These NICs leave the group, in its queue, hosts told first (their rows are about
    to go: their VM is expunged or they are detached, whatever the VM's state)."""

    service: ClassVar[str] = SECURITY_GROUP_MEMBER_SERVICE
    route_by: ClassVar[str | None] = "security_group_uuid"
    security_group_uuid: str
    vm_nic_uuids: list[str]
