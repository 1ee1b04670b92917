"""The node's side of tests with the real KVM agent (tests/e2e/test_kvm_agent*.py): the
playbook variables that deploy into a test prefix, AddKVMHost over REST, agent commands
through the node's bus, and the VM state changes the agent reports."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from tests.support.api_client import ApiClient
from zstackpy.node.node import ManagementNode
from zstackpy.services.host.messages import (
    HostAgentCallMsg,
    HostAgentCallReply,
    VmStateChangedOnHostEvent,
)
from zstackpy.services.volume.messages import VolumeView

HOST_PASSWORD = "host-Pa55word-never-logged"


def deploy_vars(prefix: Path) -> dict[str, Any]:
    return {
        "ansible_connection": "local",
        "zstack_prefix": str(prefix),
        "zstack_service": "none",
        "zstack_install_packages": False,
        "zstack_install_agent": False,
    }


async def add_real_host(admin: ApiClient, ip: str, cluster_uuid: str) -> Any:
    body = {
        "name": f"kvm-{ip}",
        "managementIp": ip,
        "clusterUuid": cluster_uuid,
        "username": "root",
        "password": HOST_PASSWORD,
    }
    answer = await admin.request("POST", "/hosts/kvm", json={"params": body})
    return await admin.finish(answer, timeout=180)


async def host_call(
    node: ManagementNode, host_uuid: str, agent_path: str, /, **cmd: Any
) -> dict[str, Any]:
    reply = await node.context.bus.request(
        HostAgentCallMsg(host_uuid=host_uuid, path=agent_path, command=cmd, timeout=60),
        HostAgentCallReply,
        timeout=90,
    )
    return reply.result


def volume(
    uuid_: str, path: str, device_id: int, kind: Literal["Root", "Data"] = "Root"
) -> VolumeView:
    return VolumeView(
        uuid=uuid_,
        type=kind,
        vm_instance_uuid=None,
        primary_storage_uuid="ps",
        host_uuid=None,
        install_path=path,
        format="qcow2",
        size=1 << 30,
        device_id=device_id,
    )


class States:
    """VM state changes the agent reported, as the node publishes them."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    async def on_event(self, event: VmStateChangedOnHostEvent) -> None:
        self.seen.append((event.vm_uuid, event.state))
        self.changed.set()

    async def wait_for(self, vm_uuid: str, state: str, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while (vm_uuid, state) not in self.seen:
                self.changed.clear()
                await self.changed.wait()
        self.seen.clear()
