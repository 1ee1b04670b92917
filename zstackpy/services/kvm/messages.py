"""The kvm service's contract: AddKVMHost and UpdateKVMHost. Everything else a KVM host
answers (query, update, state, reconnect, delete) is the host service's."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from zstackpy.api.messages import APICreateMessage, APIMessage, ApiSpec
from zstackpy.services.host.messages import HOST_RESOURCE_TYPE

KVM_SERVICE = "kvm"
_PKG = "org.zstack.kvm"


class APIAddKVMHostMsg(APICreateMessage):
    """Add a KVM host: deploy its agent over SSH (the simulator's deploy in simulated
    mode), connect, read its capacity. Answers HostEvent with the Connected host."""

    api_service: ClassVar[str] = KVM_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="AddKVMHost",
        java_class=f"{_PKG}.APIAddKVMHostMsg",
        method="POST",
        path="/hosts/kvm",
        body_key="params",
        result_java_class=f"{_PKG}.APIAddKVMHostEvent",
        creates=HOST_RESOURCE_TYPE,
        summary="Add a KVM host to a cluster: deploy its agent, connect, read its capacity",
    )
    route_by: ClassVar[str | None] = "resource_uuid"
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    management_ip: str = Field(min_length=1, max_length=255)
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=255, repr=False)
    ssh_port: int = Field(22, ge=1, le=65535)
    cluster_uuid: str


class APIUpdateKVMHostMsg(APIMessage):
    """Change a KVM host's SSH credentials (used by the next redeploy) and, like
    UpdateHost, its name, description or management IP."""

    api_service: ClassVar[str] = KVM_SERVICE
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateKVMHost",
        java_class=f"{_PKG}.APIUpdateKVMHostMsg",
        method="PUT",
        path="/hosts/kvm/{uuid}/actions",
        body_key="updateKVMHost",
        result_java_class=f"{_PKG}.APIUpdateKVMHostEvent",
        summary="Change a KVM host's SSH credentials, name, description or management IP",
    )
    route_by: ClassVar[str | None] = "uuid"
    uuid: str
    username: str | None = Field(None, min_length=1, max_length=255)
    password: str | None = Field(None, min_length=1, max_length=255, repr=False)
    ssh_port: int | None = Field(None, ge=1, le=65535)
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    management_ip: str | None = Field(None, min_length=1, max_length=255)
