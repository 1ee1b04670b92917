"""The simulator plugin: the ``simulator`` agent driver, which lets a simulator play every
host (``ZSTACK_SIMULATOR=1``, the embedded default).

A simulator process (``ZSTACK_SIMULATOR_URL``) is used when one is named; otherwise the
node runs one in-process on a loopback port. An agent's address is only a label: its
URL goes to the simulator, which maps (address, port) to its simulated machine, and
deployment is the simulator's deploy call (a credentials check and the token install).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from zstackpy.core.agent import AgentEndpoint, AgentErr
from zstackpy.core.agent.driver import (
    SIMULATOR_DRIVER,
    AgentDriver,
    AgentDriverProvider,
    DeployOutcome,
    DeployRequest,
)
from zstackpy.core.errors import ZError

if TYPE_CHECKING:
    from simulator.simulator import Simulator
    from zstackpy.core.context import NodeContext
    from zstackpy.core.plugin import PluginRegistry


class SimulatorDriver:
    """``simulator`` is the in-process simulator when this driver started one."""

    def __init__(self, base_url: str, simulator: Simulator | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.simulator = simulator
        self._http = aiohttp.ClientSession()

    def agent_url(self, endpoint: AgentEndpoint, path: str) -> str:
        label = quote(endpoint.address, safe="")
        return f"{self.base_url}/agents/{label}/{endpoint.port}{path}"

    def deploys_on_reconnect(self) -> bool:
        # A simulated machine keeps its agent; its deploy only checks credentials.
        return False

    async def deploy(self, request: DeployRequest) -> DeployOutcome:
        endpoint = request.endpoint
        body = {
            "address": endpoint.address,
            "port": endpoint.port,
            "username": request.username,
            "password": request.password,
            "sshPort": request.ssh_port,
            "token": endpoint.token,
            # An appliance's agent lives and dies with its VM (the owner).
            "ownerUuid": endpoint.owner_uuid,
        }
        answer: Any
        try:
            url = f"{self.base_url}/simulator/deploy"
            async with self._http.post(url, json=body) as resp:
                answer = await resp.json(content_type=None)
        except (aiohttp.ClientError, ValueError) as exc:
            raise ZError(
                AgentErr.DEPLOY_FAILED,
                f"deploying the agent to {endpoint.address} failed: {type(exc).__name__}",
                address=endpoint.address,
            ) from exc
        if not isinstance(answer, dict) or not answer.get("success"):
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise ZError(
                AgentErr.DEPLOY_FAILED,
                f"deploying the agent to {endpoint.address} failed: {error}",
                address=endpoint.address,
                ssh_port=request.ssh_port,
                error=error,
            )
        return DeployOutcome(output=f"simulated deployment of the {request.kind} agent")

    async def close(self) -> None:
        await self._http.close()
        if self.simulator is not None:
            await self.simulator.stop()


class SimulatorDriverProvider:
    def driver_name(self) -> str:
        return SIMULATOR_DRIVER

    async def open_driver(self, ctx: NodeContext) -> AgentDriver:
        url = ctx.settings.simulator_url
        if url is not None:
            return SimulatorDriver(url, None)
        from simulator.simulator import Simulator

        simulator = Simulator()
        await simulator.start(host="127.0.0.1", port=0)
        try:
            return SimulatorDriver(simulator.base_url, simulator)
        except BaseException:
            await asyncio.shield(simulator.stop())
            raise


class _Plugin:
    name = "simulator"

    def setup(self, registry: PluginRegistry) -> None:
        registry.add_extension(AgentDriverProvider, SimulatorDriverProvider())


plugin = _Plugin()
