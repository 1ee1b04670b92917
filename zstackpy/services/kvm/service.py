"""The kvm service: AddKVMHost and UpdateKVMHost, the KVM hypervisor backend the host
service drives (reconnect, ping, agent endpoint), and the KVM agent's own reports."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from zstackpy.api.ownership import rename_resource
from zstackpy.core.agent import KVM_AGENT_PORT, AgentEndpoint, AgentReport
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.service import Service, handles
from zstackpy.services.host.extensions import PingAnswer
from zstackpy.services.host.messages import (
    DisconnectHostMsg,
    HostErr,
    HostEvent,
    ReconnectHostMsg,
    VmStateChangedOnHostEvent,
)
from zstackpy.services.host.models import HostVO
from zstackpy.services.host.records import (
    duplicate_ip,
    host_queue,
    load_host,
    publish_changed,
    refuse_duplicate_ip,
    require_host,
)
from zstackpy.services.kvm.configs import SYNC_LEVEL
from zstackpy.services.kvm.flows import AGENT_VERSION, KvmConnectCtx
from zstackpy.services.kvm.messages import KVM_SERVICE, APIAddKVMHostMsg, APIUpdateKVMHostMsg
from zstackpy.services.kvm.models import KVM_HOST_TABLE, KVM_HYPERVISOR, KVMHostVO
from zstackpy.services.kvm.vm_backend import AGENT_VM_STATES

log = logging.getLogger(__name__)

ADD_CHAIN = "host-connect"
RECONNECT_CHAIN = "host-reconnect"
REPORT_RECONNECT_ME = "/kvm/reconnectme"
REPORT_VM_STATE = "/kvm/reportvmstate"
REPORT_HOST_STOP = "/kvm/reporthoststop"


class KvmService(Service):
    """Also the ``HypervisorBackend`` of KVM hosts (registered as such by the plugin)."""

    name = KVM_SERVICE

    async def start(self) -> None:
        agents = self.ctx.agents
        agents.on_report(REPORT_RECONNECT_ME, self._reconnect_me)
        agents.on_report(REPORT_VM_STATE, self._report_vm_state)
        agents.on_report(REPORT_HOST_STOP, self._report_host_stop)

    # ----- API --------------------------------------------------------------------------

    @handles(APIAddKVMHostMsg)
    async def add(self, msg: APIAddKVMHostMsg) -> HostEvent:
        assert msg.resource_uuid is not None  # the portal gives every create its UUID
        return await self.ctx.queues.run(host_queue(msg.resource_uuid), self._add, msg)

    async def _add(self, msg: APIAddKVMHostMsg) -> HostEvent:
        assert msg.resource_uuid is not None
        ctx = KvmConnectCtx(node=self.ctx, host_uuid=msg.resource_uuid, add=msg)
        await self.ctx.flows.run(ADD_CHAIN, ctx)
        auth = msg.require_auth()
        inventory = await publish_changed(self.ctx, msg.resource_uuid, "created", auth.account_uuid)
        return HostEvent(inventory=inventory)

    @handles(APIUpdateKVMHostMsg)
    async def update(self, msg: APIUpdateKVMHostMsg) -> HostEvent:
        return await self.ctx.queues.run(host_queue(msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateKVMHostMsg) -> HostEvent:
        host_changes = msg.model_dump(
            include={"name", "description", "management_ip"}, exclude_none=True, by_alias=False
        )
        kvm_changes = msg.model_dump(
            include={"username", "password", "ssh_port"}, exclude_none=True, by_alias=False
        )
        async with self.ctx.db.session() as session, session.begin():
            row = await require_host(session, msg.uuid)
            if not isinstance(row, KVMHostVO):
                raise ZError(
                    SysErr.INVALID_ARGUMENT,
                    f"host {msg.uuid} is not a KVM host",
                    uuid=msg.uuid,
                    hypervisorType=row.hypervisor_type,
                )
            if "management_ip" in host_changes:
                await refuse_duplicate_ip(
                    session, host_changes["management_ip"], except_uuid=msg.uuid
                )
            if host_changes:
                try:
                    await session.execute(
                        update(HostVO).where(HostVO.uuid == msg.uuid).values(**host_changes)
                    )
                except IntegrityError:  # another update took the address meanwhile
                    raise duplicate_ip(host_changes["management_ip"]) from None
            if "name" in host_changes:
                await rename_resource(session, msg.uuid, host_changes["name"])
            if kvm_changes:
                table = KVM_HOST_TABLE
                await session.execute(
                    update(table).where(table.c.uuid == msg.uuid).values(**kvm_changes)
                )
        auth = msg.require_auth()
        return HostEvent(
            inventory=await publish_changed(self.ctx, msg.uuid, "updated", auth.account_uuid)
        )

    # ----- HypervisorBackend ------------------------------------------------------------

    def hypervisor_type(self) -> str:
        return KVM_HYPERVISOR

    def agent_endpoint(self, host: HostVO) -> AgentEndpoint:
        if not isinstance(host, KVMHostVO):
            raise ZError(SysErr.INTERNAL, f"host {host.uuid} is not a KVM host", uuid=host.uuid)
        return AgentEndpoint(host.uuid, host.management_ip, KVM_AGENT_PORT, host.agent_token)

    def command_parallelism(self) -> int:
        return self.ctx.configs.value(SYNC_LEVEL)

    async def connect(self, host_uuid: str, redeploy: bool = False) -> None:
        ctx = KvmConnectCtx(node=self.ctx, host_uuid=host_uuid, redeploy=redeploy)
        await self.ctx.flows.run(RECONNECT_CHAIN, ctx)

    async def ping(
        self,
        host: HostVO,
        timeout: float,  # noqa: ASYNC109
        fields: Mapping[str, Any],
    ) -> PingAnswer:
        answer = await self.ctx.agents.call(
            self.agent_endpoint(host),
            "/host/ping",
            {**fields, "hostUuid": host.uuid},
            timeout=timeout,
            max_in_flight=self.command_parallelism(),
        )
        answered_as = answer.get("hostUuid")
        if answered_as != host.uuid or answer.get("version") != AGENT_VERSION:
            raise ZError(
                HostErr.IDENTITY_MISMATCH,
                f"the agent at {host.management_ip} answers as host {answered_as} "
                f"(version {answer.get('version')}), not as {host.uuid}",
                uuid=host.uuid,
                answeredAs=answered_as,
            )
        return answer

    # ----- agent reports ----------------------------------------------------------------

    async def _verified_host(self, report: AgentReport) -> str:
        """The reporting host's uuid, once the report's token is that host's token."""
        host_uuid = report.body.get("hostUuid")
        refused = ZError(
            HostErr.REPORT_REFUSED,
            f"agent report {report.commandpath} refused: it does not carry the token of "
            "the host it names",
            commandpath=report.commandpath,
            hostUuid=host_uuid if isinstance(host_uuid, str) else None,
        )
        if not isinstance(host_uuid, str) or not report.token:
            raise refused
        try:
            row = await load_host(self.ctx, host_uuid)
        except ZError:
            raise refused from None  # an unknown host looks exactly like a wrong token
        if not isinstance(row, KVMHostVO) or not secrets.compare_digest(
            row.agent_token.encode(), report.token.encode()
        ):
            raise refused
        return host_uuid

    async def _reconnect_me(self, report: AgentReport) -> None:
        host_uuid = await self._verified_host(report)
        reason = str(report.body.get("reason") or "the agent asked to be reconnected")
        log.info("host %s asks to be reconnected: %s", host_uuid, reason)
        # Fire and forget: the agent only needs to know the node took the request.
        await self.ctx.bus.send(ReconnectHostMsg(host_uuid=host_uuid, reason=reason))

    async def _report_host_stop(self, report: AgentReport) -> None:
        """The host is shutting down: Disconnected at once, not after missed pings."""
        host_uuid = await self._verified_host(report)
        reason = str(report.body.get("reason") or "the host reported it is shutting down")
        reply = await self.ctx.bus.call(DisconnectHostMsg(host_uuid=host_uuid, reason=reason))
        reply.raise_if_error()

    async def _report_vm_state(self, report: AgentReport) -> None:
        host_uuid = await self._verified_host(report)
        vm_uuid = report.body.get("vmUuid")
        if not isinstance(vm_uuid, str) or not vm_uuid:
            raise ZError(
                SysErr.INVALID_ARGUMENT, "a VM state report needs vmUuid", hostUuid=host_uuid
            )
        state = AGENT_VM_STATES.get(str(report.body.get("vmState")), "Unknown")
        await self.ctx.bus.publish(
            VmStateChangedOnHostEvent(host_uuid=host_uuid, vm_uuid=vm_uuid, state=state)
        )
