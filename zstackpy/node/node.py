"""The management node: one asyncio process hosting every service.

Start-up order: database (must be at the schema head), plugins, global configs, flows, bus
and services, heartbeat (joins the ring), services' own start, HTTP. Shut-down runs the same
steps in reverse from one AsyncExitStack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zstackpy.api.http.errors import register_error_status
from zstackpy.api.jobs.service import ApiJobService
from zstackpy.core import eventloop
from zstackpy.core.agent import AgentClient
from zstackpy.core.agent.driver import REAL_HOSTS_DRIVER, SIMULATOR_DRIVER, AgentDriverProvider
from zstackpy.core.bus import CloudBus, Transport
from zstackpy.core.bus.amqp import AmqpTransport
from zstackpy.core.bus.inproc import InProcBroker, InProcTransport
from zstackpy.core.config import GlobalConfigs
from zstackpy.core.context import NodeContext
from zstackpy.core.db import Database, ensure_at_head
from zstackpy.core.db.statistics import StatisticsKeeper
from zstackpy.core.errors import KernelErr, ZError
from zstackpy.core.flow import FlowRegistry
from zstackpy.core.flow.collect import TraceCarrier
from zstackpy.core.heartbeat import Heartbeat
from zstackpy.core.ids import new_uuid
from zstackpy.core.kernel_configs import KERNEL_CONFIGS
from zstackpy.core.membership import NodeTakeover
from zstackpy.core.plugin import PluginRegistry, discover
from zstackpy.core.ring import Ring
from zstackpy.core.service import Service
from zstackpy.core.settings import NodeSettings
from zstackpy.core.workqueue import WorkQueues
from zstackpy.node.health import NodeHealth
from zstackpy.node.http import HttpServer
from zstackpy.node.metrics import NodeMetrics

if TYPE_CHECKING:
    from simulator import Simulator

log = logging.getLogger(__name__)

REPO_FLOWS_DIR = Path(__file__).resolve().parent.parent.parent / "flows"


class NodeState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FENCED = "fenced"


class ManagementNode:
    def __init__(
        self,
        settings: NodeSettings,
        *,
        node_uuid: str | None = None,
        broker: InProcBroker | None = None,
        serve_http: bool = True,
    ) -> None:
        self.settings = settings
        self.uuid = node_uuid or new_uuid()
        self.state = NodeState.STARTING
        self.started_at = time.time()
        self._broker = broker
        self._serve_http = serve_http
        self._stack = contextlib.AsyncExitStack()
        self._stopped = asyncio.Event()
        self._urgent = asyncio.Event()  # a second stop request: no more draining
        self.ctx: NodeContext | None = None
        self.heartbeat: Heartbeat | None = None
        self.http: HttpServer | None = None
        self.services: dict[type[Service], Service] = {}
        self.simulator: Simulator | None = None  # the in-process one, in simulated mode
        self.health = NodeHealth(self)
        self.metrics: NodeMetrics | None = None  # set once the node's parts exist

    @property
    def context(self) -> NodeContext:
        if self.ctx is None:
            raise RuntimeError("the node has not started")
        return self.ctx

    def _transport(self) -> Transport:
        if self.settings.bus_url:
            return AmqpTransport(self.settings.bus_url)
        return InProcTransport(self._broker)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            self.state = NodeState.STOPPED
            raise

    async def _start(self) -> None:
        settings = self.settings
        db = Database(settings.database_url)
        self._stack.push_async_callback(db.close)
        await ensure_at_head(db)
        statistics = StatisticsKeeper(db)
        statistics.start()
        self._stack.push_async_callback(statistics.stop)

        registry = PluginRegistry()
        # Entry-point discovery and plugin imports read files: off the loop.
        for plugin, source in await asyncio.to_thread(discover, settings.plugins):
            registry.install(plugin, source)
        for code, status in registry.error_statuses.items():
            register_error_status(code, status)

        configs = GlobalConfigs()
        for definition in [*KERNEL_CONFIGS, *registry.global_configs]:
            configs.define(definition)
        await configs.load(db)

        flows = FlowRegistry()
        for flow_id, factory in registry.flow_factories.items():
            flows.register(flow_id, factory)
        # File reads off the loop; a plugin's missing directory is its own start error.
        await asyncio.to_thread(self._load_flows, flows, registry)
        flows.validate()

        ring = Ring()
        bus = CloudBus(self.uuid, self._transport(), ring, default_timeout=settings.call_timeout)
        # A job collects the flow traces of what it causes on every node (web UI's view).
        bus.carriers.append(TraceCarrier())
        queues = WorkQueues()
        self.ctx = NodeContext(
            node_uuid=self.uuid,
            settings=settings,
            bus=bus,
            ring=ring,
            db=db,
            queues=queues,
            flows=flows,
            configs=configs,
            plugins=registry,
            agents=AgentClient(queues),
            health=self.health,
        )
        # Before any message is handled: the hooks are the metrics' only inputs.
        self.metrics = NodeMetrics(self)
        self._stack.callback(self.metrics.close)
        self.services = {cls: cls(self.ctx) for cls in registry.services}
        registry.bind_services(self.services)
        for service in self.services.values():
            await bus.register(service.name, service.handle)
        await bus.start()
        self._stack.push_async_callback(bus.stop)

        self.heartbeat = Heartbeat(
            node_uuid=self.uuid,
            host_name=settings.advertised_host,
            port=settings.http_port,
            db=db,
            bus=bus,
            ring=ring,
            configs=configs,
            takeovers=lambda: registry.extensions(NodeTakeover),
            on_fenced=self._fenced,
        )
        await self.heartbeat.start()
        self._stack.push_async_callback(self._leave_ring)
        self.ctx.agents.hold = self._agent_hold

        # HTTP before the services' own start: agents call back to it (a host reconnect at
        # start needs the callback URL's port); /health says "not ready" until the end.
        if self._serve_http:
            self.http = HttpServer(self, settings.http_host, settings.http_port)
            await self.http.start()
            self._stack.push_async_callback(self.http.stop)
        await self._start_agent_client()

        for service in self.services.values():
            await self._stack.enter_async_context(service)
        for service in self.services.values():
            await service.node_ready()
        self.state = NodeState.READY
        self.health.prime()
        log.info(
            "management node %s ready (%s bus, %s, %s loop, %d services, plugins: %s)",
            self.uuid,
            "AMQP" if settings.bus_url else "in-process",
            db.dialect,
            eventloop.loop_name(),
            len(self.services),
            ", ".join(registry.plugins) or "none",
        )

    async def _start_agent_client(self) -> None:
        settings = self.settings
        port = self.http.port if self.http is not None else settings.http_port
        base_url = f"http://{settings.advertised_host}:{port}"
        wanted = SIMULATOR_DRIVER if settings.simulate_hosts else REAL_HOSTS_DRIVER
        ctx = self.context
        providers = {p.driver_name(): p for p in ctx.plugins.extensions(AgentDriverProvider)}
        provider = providers.get(wanted)
        if provider is None:
            raise ZError(
                KernelErr.PLUGIN_CONTRACT,
                f"no plugin provides the {wanted!r} agent driver (installed: "
                f"{', '.join(sorted(providers)) or 'none'})",
                driver=wanted,
            )
        driver = await provider.open_driver(ctx)
        self._stack.push_async_callback(driver.close)
        # The in-process simulator, when the simulator driver runs one (tests inspect it).
        self.simulator = getattr(driver, "simulator", None)
        await ctx.agents.start(base_url, driver)
        self._stack.push_async_callback(ctx.agents.stop)

    def _load_flows(self, flows: FlowRegistry, registry: PluginRegistry) -> None:
        default = self.settings.flows_dir or REPO_FLOWS_DIR
        if default.is_dir() or self.settings.flows_dir is not None:
            flows.load_dir(default)
        for directory in registry.flow_dirs:
            flows.load_dir(directory)

    def _agent_hold(self) -> str | None:
        """Past one heartbeat window without the database, the node sends no agent
        command: it could not record what the command did, and the other nodes may be
        about to take the resource over."""
        beat = self.heartbeat
        if beat is None:
            return None
        lost_for = beat.database_unreachable_for()
        if lost_for > beat.window:
            return f"the database has been unreachable for {lost_for:.0f} s"
        return None

    async def _leave_ring(self) -> None:
        if self.heartbeat is not None:
            await self.heartbeat.stop(leave=self.state is not NodeState.FENCED)

    async def _fenced(self) -> None:
        # Stop taking and sending messages now: the others have already given this
        # node's resources to new owners, so any work done here would race theirs.
        self.state = NodeState.FENCED
        await self.context.bus.stop()
        self._stopped.set()

    async def stop(self) -> None:
        if self.state is not NodeState.FENCED:
            self.state = NodeState.STOPPING
        await self._stack.aclose()
        if self.state is not NodeState.FENCED:
            self.state = NodeState.STOPPED
        self._stopped.set()

    def request_stop(self) -> None:
        """The first request drains then stops; a second one ends a drain at once."""
        if self._stopped.is_set():
            self._urgent.set()
        self._stopped.set()

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 -- the drain's bound
        """Graceful leave, before ``stop``: ``/health`` turns not ready (load balancers
        send no more), new API jobs are refused with SYS.1010, and the running ones get
        up to ``timeout`` s to end (a second ``request_stop`` cuts it short). The node
        stays in the ring meanwhile, serving the messages those jobs and other nodes
        send it. Then, within the same ``timeout``, it refuses new calls from other nodes
        (SYS.1012), hands the messages they send without a reply to the next owner of
        their resource, and waits for the handlers still at work for them. Those still
        running at the end are cut off with an answer (SYS.1012, outcome unknown) for
        their callers, rather than dropped by the bus's stop; the resources' next owners
        settle what they left. ``stop`` then leaves the ring and the others take its
        resources over. Answers how many jobs were still running."""
        if self.state is not NodeState.READY:
            return 0
        self.state = NodeState.DRAINING
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + timeout
        bus = self.context.bus
        jobs = next((s for s in self.services.values() if isinstance(s, ApiJobService)), None)
        left = 0 if jobs is None else await self._unless_urgent(jobs.drain(timeout), -1)
        await self._unless_urgent(bus.quiesce("it is draining", ends_at - loop.time()), -1)
        cut = await bus.cut_off(f"it drained, and its drain timeout ({timeout:g} s) ended first")
        log.info(
            "management node %s drained (%s jobs left, %s handlers of other nodes' messages "
            "cut off)",
            self.uuid,
            left,
            cut,
        )
        return left

    async def _unless_urgent(self, work: Coroutine[Any, Any, int], cut: int) -> int:
        """``work``'s answer, or ``cut`` when a second stop request ends the drain first."""
        task = asyncio.create_task(work)
        urgent = asyncio.create_task(self._urgent.wait())
        await asyncio.wait({task, urgent}, return_when=asyncio.FIRST_COMPLETED)
        urgent.cancel()
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return cut

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
