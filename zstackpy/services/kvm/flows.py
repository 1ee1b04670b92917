"""The flows of ``flows/host-connect.yaml`` (AddKVMHost) and ``flows/host-reconnect.yaml``
(ReconnectHost, the ping tracker's reconnects): one context, ``KvmConnectCtx``.

Both run in the host's work queue. An add that fails anywhere rolls back to nothing: the
rows created by ``create-host-rows`` go, so no host, capacity or resource row is left.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

import zstackpy
from zstackpy.api.ownership import add_resource, may_use, remove_resources
from zstackpy.core.agent import KVM_AGENT_PORT, AgentEndpoint
from zstackpy.core.cascade import CascadeParticipant, DeleteMode, cascade_delete
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.flow import Flow
from zstackpy.services.cluster.messages import ClusterInventory
from zstackpy.services.cluster.models import ClusterVO
from zstackpy.services.host.configs import CPU_OVER_PROVISIONING_RATIO
from zstackpy.services.host.extensions import ConnectingHost, HostConnectExtension
from zstackpy.services.host.messages import HOST_RESOURCE_TYPE, HostErr, HostStatus
from zstackpy.services.host.models import HostVO
from zstackpy.services.host.records import (
    duplicate_ip,
    refuse_duplicate_ip,
    require_host,
    set_status,
)
from zstackpy.services.kvm.configs import RESERVED_MEMORY, SYNC_LEVEL
from zstackpy.services.kvm.messages import APIAddKVMHostMsg
from zstackpy.services.kvm.models import KVM_HOST_TABLE, KVM_HYPERVISOR, KVMHostVO

# The agent protocol version the node speaks; an agent answering a ping with another one
# is reconnected (ZStack compares its db version the same way).
AGENT_VERSION = zstackpy.__version__
CONNECT_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 60.0


@dataclass
class KvmConnectCtx:
    """One (re)connect of one KVM host. ``add`` is set for AddKVMHost only."""

    node: NodeContext
    host_uuid: str
    add: APIAddKVMHostMsg | None = None
    # Filled by check-kvm-cluster (add) or load-kvm-host (reconnect).
    name: str = ""
    zone_uuid: str = ""
    cluster_uuid: str = ""
    management_ip: str = ""
    endpoint: AgentEndpoint | None = None
    # ReconnectHost from the API: install the agent again first (RedeployAgent).
    redeploy: bool = False
    # Recorded so rollbacks undo exactly what ran.
    rows_created: bool = False

    @property
    def is_first_connect(self) -> bool:
        return self.add is not None

    def agent(self) -> AgentEndpoint:
        assert self.endpoint is not None, "a flow before this one sets the endpoint"
        return self.endpoint


class CheckKvmCluster(Flow[KvmConnectCtx]):
    """The cluster exists, the caller may use it, and it is a KVM cluster."""

    async def run(self, ctx: KvmConnectCtx) -> None:
        add = _add_of(ctx)
        auth = add.require_auth()
        async with ctx.node.db.session() as session:
            row = await session.get(ClusterVO, add.cluster_uuid)
            if row is None or not await may_use(session, add.cluster_uuid, auth):
                raise ZError(
                    SysErr.RESOURCE_NOT_FOUND,
                    f"no cluster with uuid {add.cluster_uuid}",
                    uuid=add.cluster_uuid,
                )
            cluster = ClusterInventory.model_validate(row, from_attributes=True)
        if cluster.hypervisor_type != KVM_HYPERVISOR:
            raise ZError(
                HostErr.NOT_KVM_CLUSTER,
                f"cluster {cluster.uuid} is a {cluster.hypervisor_type} cluster; a KVM host "
                "needs a KVM cluster",
                clusterUuid=cluster.uuid,
                hypervisorType=cluster.hypervisor_type,
            )
        ctx.name, ctx.zone_uuid, ctx.cluster_uuid = add.name, cluster.zone_uuid, cluster.uuid
        ctx.management_ip = add.management_ip


class CreateHostRows(Flow[KvmConnectCtx]):
    """HostVO + KVMHostVO (status Connecting) + ResourceVO, with a fresh agent token.
    Refuses a management IP another host has (HOST.1001), even when two adds race."""

    async def run(self, ctx: KvmConnectCtx) -> None:
        add = _add_of(ctx)
        token = secrets.token_urlsafe(32)
        try:
            async with ctx.node.db.session() as session, session.begin():
                if await session.get(HostVO, ctx.host_uuid) is not None:
                    raise ZError(
                        SysErr.CREATE_RESOURCE,
                        f"a host with uuid {ctx.host_uuid} exists",
                        uuid=ctx.host_uuid,
                    )
                await refuse_duplicate_ip(session, ctx.management_ip)
                session.add(
                    KVMHostVO(
                        uuid=ctx.host_uuid,
                        zone_uuid=ctx.zone_uuid,
                        cluster_uuid=ctx.cluster_uuid,
                        name=add.name,
                        description=add.description,
                        management_ip=ctx.management_ip,
                        hypervisor_type=KVM_HYPERVISOR,
                        state="Enabled",
                        status=HostStatus.CONNECTING,
                        username=add.username,
                        password=add.password,
                        ssh_port=add.ssh_port,
                        agent_token=token,
                    )
                )
                add_resource(
                    session,
                    uuid=ctx.host_uuid,
                    resource_type=HOST_RESOURCE_TYPE,
                    name=add.name,
                    auth=add.require_auth(),
                )
        except IntegrityError:
            # Lost a race with another add of the same address: the unique index decided.
            raise duplicate_ip(ctx.management_ip) from None
        ctx.rows_created = True
        ctx.endpoint = AgentEndpoint(ctx.host_uuid, ctx.management_ip, KVM_AGENT_PORT, token)

    async def rollback(self, ctx: KvmConnectCtx) -> None:
        if not ctx.rows_created:
            return
        # Connect hooks that ran may have hung rows on the host (local storage refs): the
        # cascade removes them first, whatever hook failed.
        await cascade_delete(
            ctx.node.plugins.extensions(CascadeParticipant),
            HOST_RESOURCE_TYPE,
            [ctx.host_uuid],
            DeleteMode.ENFORCING,
        )
        async with ctx.node.db.session() as session, session.begin():
            # HostVO's delete cascades to KVMHostVO (ON DELETE CASCADE).
            await session.execute(delete(HostVO).where(HostVO.uuid == ctx.host_uuid))
            await remove_resources(session, [ctx.host_uuid])


class DeployAgent(Flow[KvmConnectCtx]):
    """Install and start the agent with the host's token (the Ansible playbook on real
    machines; the simulator's deploy call in simulated mode); what it printed is kept on
    the host's record. A failure (wrong credentials, a failing task) is AGENT.1007."""

    async def run(self, ctx: KvmConnectCtx) -> None:
        add = _add_of(ctx)
        outcome = await ctx.node.agents.deploy(
            ctx.agent(), username=add.username, password=add.password, ssh_port=add.ssh_port
        )
        await _update_kvm(ctx, deploy_output=outcome.output)


class RedeployAgent(Flow[KvmConnectCtx]):
    """ReconnectHost (the API's): install the agent again where the driver does that (real
    machines: the playbook restores a changed host), with the stored credentials. The
    ping tracker's reconnects skip it (``ctx.redeploy`` is False)."""

    async def run(self, ctx: KvmConnectCtx) -> None:
        agents = ctx.node.agents
        if not ctx.redeploy or not agents.deploys_on_reconnect:
            return
        async with ctx.node.db.session() as session:
            row = await require_host(session, ctx.host_uuid)
        if not isinstance(row, KVMHostVO):
            return
        try:
            outcome = await agents.deploy(
                ctx.agent(), username=row.username, password=row.password, ssh_port=row.ssh_port
            )
        except ZError as exc:
            await _update_kvm(ctx, deploy_output=str(exc.details.get("output") or ""))
            raise
        await _update_kvm(ctx, deploy_output=outcome.output)


class LoadKvmHost(Flow[KvmConnectCtx]):
    """Reconnect: read the host's row into the context; status Connecting."""

    async def run(self, ctx: KvmConnectCtx) -> None:
        async with ctx.node.db.session() as session:
            row = await require_host(session, ctx.host_uuid)
        if not isinstance(row, KVMHostVO):
            raise ZError(
                SysErr.INVALID_ARGUMENT,
                f"host {ctx.host_uuid} is not a KVM host",
                uuid=ctx.host_uuid,
                hypervisorType=row.hypervisor_type,
            )
        ctx.name, ctx.zone_uuid, ctx.cluster_uuid = row.name, row.zone_uuid, row.cluster_uuid
        ctx.management_ip = row.management_ip
        ctx.endpoint = AgentEndpoint(row.uuid, row.management_ip, KVM_AGENT_PORT, row.agent_token)
        await set_status(ctx.node, ctx.host_uuid, HostStatus.CONNECTING, "reconnecting")


class ConnectAgent(Flow[KvmConnectCtx]):
    """``/host/connect`` (sync): tells the agent its host uuid and where to report."""

    async def run(self, ctx: KvmConnectCtx) -> None:
        agents = ctx.node.agents
        answer = await agents.call_sync(
            ctx.agent(),
            "/host/connect",
            {
                "hostUuid": ctx.host_uuid,
                "sendCommandUrl": agents.send_command_url,
                "version": AGENT_VERSION,
            },
            timeout=CONNECT_TIMEOUT_S,
        )
        await _update_kvm(
            ctx,
            libvirt_version=_text(answer.get("libvirtVersion")),
            qemu_version=_text(answer.get("qemuVersion")),
        )


class ReadHostFacts(Flow[KvmConnectCtx]):
    """``/host/fact``: the OS and CPU architecture the host runs."""

    async def run(self, ctx: KvmConnectCtx) -> None:
        facts = await _call(ctx, "/host/fact")
        await _update_kvm(
            ctx,
            os_distribution=_text(facts.get("osDistribution")),
            os_version=_text(facts.get("osVersion")),
            os_release=_text(facts.get("osRelease")),
        )
        async with ctx.node.db.session() as session, session.begin():
            await session.execute(
                update(HostVO)
                .where(HostVO.uuid == ctx.host_uuid)
                .values(architecture=_text(facts.get("cpuArchitecture")))
            )


class ReadHostCapacity(Flow[KvmConnectCtx]):
    """``/host/capacity``: total CPU (cpuNum x over-provisioning ratio, in vCPUs) and
    memory (physical minus ``kvm reservedMemory``). What VMs reserved stays reserved: on a
    reconnect available = new total - (old total - old available), never below zero."""

    async def run(self, ctx: KvmConnectCtx) -> None:
        node = ctx.node
        answer = await _call(ctx, "/host/capacity")
        cpu_num = _count(answer, "cpuNum")
        physical = _count(answer, "totalMemory")
        ratio = node.configs.value(CPU_OVER_PROVISIONING_RATIO)
        total_cpu = int(cpu_num * ratio)
        total_memory = max(0, physical - node.configs.value(RESERVED_MEMORY))
        async with node.db.session() as session, session.begin():
            row = await require_host(session, ctx.host_uuid)
            used_cpu = row.total_cpu_capacity - row.available_cpu_capacity
            used_memory = row.total_memory_capacity - row.available_memory_capacity
            await session.execute(
                update(HostVO)
                .where(HostVO.uuid == ctx.host_uuid)
                .values(
                    cpu_num=cpu_num,
                    cpu_sockets=_count(answer, "cpuSockets"),
                    total_cpu_capacity=total_cpu,
                    available_cpu_capacity=max(0, total_cpu - used_cpu),
                    total_physical_memory=physical,
                    total_memory_capacity=total_memory,
                    available_memory_capacity=max(0, total_memory - used_memory),
                )
            )


class RunConnectExtensions(Flow[KvmConnectCtx]):
    """Every HostConnectExtension, in registration order (storage, networks)."""

    async def run(self, ctx: KvmConnectCtx) -> None:
        host = ConnectingHost(
            uuid=ctx.host_uuid,
            name=ctx.name,
            zone_uuid=ctx.zone_uuid,
            cluster_uuid=ctx.cluster_uuid,
            management_ip=ctx.management_ip,
            hypervisor_type=KVM_HYPERVISOR,
            agent=ctx.agent(),
            is_first_connect=ctx.is_first_connect,
        )
        for extension in ctx.node.plugins.extensions(HostConnectExtension):
            await extension.host_connected(host)


class MarkHostConnected(Flow[KvmConnectCtx]):
    async def run(self, ctx: KvmConnectCtx) -> None:
        reason = "added" if ctx.is_first_connect else "reconnected"
        await set_status(
            ctx.node, ctx.host_uuid, HostStatus.CONNECTED, reason, is_new=ctx.is_first_connect
        )


KVM_CONNECT_FLOWS: dict[str, type[Flow[KvmConnectCtx]]] = {
    "check-kvm-cluster": CheckKvmCluster,
    "create-host-rows": CreateHostRows,
    "deploy-agent": DeployAgent,
    "redeploy-agent": RedeployAgent,
    "load-kvm-host": LoadKvmHost,
    "connect-agent": ConnectAgent,
    "read-host-facts": ReadHostFacts,
    "read-host-capacity": ReadHostCapacity,
    "run-connect-extensions": RunConnectExtensions,
    "mark-host-connected": MarkHostConnected,
}


def _add_of(ctx: KvmConnectCtx) -> APIAddKVMHostMsg:
    if ctx.add is None:
        raise ZError(SysErr.INTERNAL, "this flow belongs to the add chain (host-connect)")
    return ctx.add


async def _update_kvm(ctx: KvmConnectCtx, **values: Any) -> None:
    async with ctx.node.db.session() as session, session.begin():
        await session.execute(
            update(KVM_HOST_TABLE).where(KVM_HOST_TABLE.c.uuid == ctx.host_uuid).values(**values)
        )


async def _call(ctx: KvmConnectCtx, path: str) -> dict[str, Any]:
    # The same per-host bound as every other command to this agent (HostAgentCallMsg).
    return await ctx.node.agents.call(
        ctx.agent(),
        path,
        {},
        timeout=COMMAND_TIMEOUT_S,
        max_in_flight=ctx.node.configs.value(SYNC_LEVEL),
    )


def _text(value: object) -> str | None:
    return value[:64] if isinstance(value, str) and value else None


def _count(answer: dict[str, Any], key: str) -> int:
    value = answer.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ZError(
            SysErr.OPERATION,
            f"the agent's /host/capacity answer has no valid {key}",
            field=key,
            value=repr(value)[:64],
        )
    return value
