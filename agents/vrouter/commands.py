"""The appliance's commands (the node's ``zstackpy/services/virtualrouter/agent.py``;
the simulator's ``simulator/appliance.py``), applied for real.

Each command makes a new ``RouterState`` (``router.py``; validated whole first, so bad
input changes nothing), then ``apply`` brings the whole appliance to it: NICs and
addresses, the nat table (one ``iptables-restore`` transaction of the agent's chains,
skipped when in place: ``agents/kvm/netrunner.py``), dnsmasq's files and process,
haproxy's configuration and process. Only then is the state kept, also on disk
(``<state_dir>/router.json``), so a restarted agent puts everything back at once. A
command that failed to apply leaves the kept state as it was; the next applies it all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.kvm.netrules import entries
from agents.kvm.netrunner import NetRunner
from agents.runtime import AgentCommandError, AgentRuntime, Handler
from agents.vrouter import render, router, system
from agents.vrouter.config import RouterConfig
from agents.vrouter.daemons import Dnsmasq, Haproxy
from agents.vrouter.router import RouterState

log = logging.getLogger(__name__)

# (add command, remove command, the key its entries come under, add, remove)
_TABLES: tuple[
    tuple[str, str, str, Callable[..., RouterState], Callable[..., RouterState]], ...
] = (
    ("/adddhcp", "/removedhcp", "dhcp", router.with_dhcp, router.without_dhcp),
    ("/setsnat", "/removesnat", "snats", router.with_snats, router.without_snats),
    ("/createeip", "/removeeip", "eips", router.with_eips, router.without_eips),
    (
        "/createportforwarding",
        "/revokeportforwarding",
        "rules",
        router.with_forwards,
        router.without_forwards,
    ),
    ("/refreshlb", "/deletelb", "lbs", router.with_lbs, router.without_lbs),
)


class RouterCommands:
    def __init__(self, runtime: AgentRuntime, config: RouterConfig) -> None:
        self.runtime, self.config = runtime, config
        state_dir = config.state_dir
        self.state_file = state_dir / "router.json"
        self.dhcp_dir = state_dir / "dhcp"
        self.run_dir = state_dir / "run"
        self.runner = NetRunner(self.dhcp_dir, config.netns)
        self.shell = system.Shell(config.netns)
        self.dnsmasq = Dnsmasq(
            self.shell, config.dnsmasq, self.run_dir / "dnsmasq.conf", self.run_dir / "dnsmasq.pid"
        )
        self.haproxy = Haproxy(
            self.shell, config.haproxy, self.run_dir / "haproxy.cfg", self.run_dir / "haproxy.pid"
        )
        self.state = RouterState()
        self.added: dict[str, list[str]] = {}  # device -> addresses the agent put there

    def register(self) -> None:
        rt = self.runtime
        rt.command("/init", self.init)
        rt.command("/ping", self.ping)
        rt.command("/echo", self.echo, sync=True)
        for add_path, remove_path, name, add, remove in _TABLES:
            rt.command(add_path, self._adder(name, add))
            rt.command(remove_path, self._remover(name, remove))

    def _adder(self, name: str, add: Callable[..., RouterState]) -> Handler:
        async def handler(cmd: dict[str, Any]) -> dict[str, Any]:
            items, rebuild = entries(cmd, name), cmd.get("rebuild") is True
            return await self.change(lambda s: add(s, items, rebuild=rebuild))

        return handler

    def _remover(self, name: str, remove: Callable[..., RouterState]) -> Handler:
        async def handler(cmd: dict[str, Any]) -> dict[str, Any]:
            items = entries(cmd, name)
            return await self.change(lambda s: remove(s, items))

        return handler

    async def init(self, cmd: dict[str, Any]) -> dict[str, Any]:
        nics = entries(cmd, "nics")
        return await self.change(lambda s: router.with_nics(s, nics), forwarding=True)

    async def ping(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return {"uuid": cmd.get("uuid")}

    async def echo(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def load(self) -> None:
        """The state the last run kept (none on a fresh appliance)."""
        try:
            text = await asyncio.to_thread(self.state_file.read_text, encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            saved = json.loads(text)
            self.state = RouterState.from_json(saved)
            self.added = {str(k): list(v) for k, v in (saved.get("added") or {}).items()}
        except (ValueError, AttributeError, AgentCommandError) as exc:
            # The node sends every table again when it connects: starting empty is safe.
            log.warning("ignoring %s, which cannot be read: %s", self.state_file, exc)

    async def reapply(self) -> None:
        """Everything kept, put in place again (at start: after a reboot of the
        appliance or a restart of the agent). A failure is logged: the node's next
        connect sends every table anew."""
        try:
            await self.change(lambda s: s, forwarding=bool(self.state.nics))
        except AgentCommandError as exc:
            log.warning("could not apply the kept state again: %s %s", exc, exc.details)

    async def change(
        self, make: Callable[[RouterState], RouterState], *, forwarding: bool = False
    ) -> dict[str, Any]:
        async with self.runner.lock:
            new = make(self.state)
            result = await self.apply(new, forwarding=forwarding)
            saved = {**new.to_json(), "added": self.added}
            await asyncio.to_thread(_save, self.state_file, saved)
            self.state = new
        return result

    async def apply(self, new: RouterState, *, forwarding: bool) -> dict[str, Any]:
        # Everything that can refuse is asked first (NICs present, dnsmasq's and
        # haproxy's verdict on their configuration), so a refusal changes nothing.
        live = await system.devices(self.shell)
        roles = system.resolve(new, live)
        public, guest = roles.get("public"), roles.get("guest")
        nat = render.render_nat(new, public.name if public else None)
        files = render.dhcp_files(new)
        conf = render.dnsmasq_conf(new, guest.name, self.dhcp_dir, self.run_dir) if guest else None
        lb_conf = render.haproxy_conf(new)
        await self.dnsmasq.check(conf)
        await self.haproxy.check(lb_conf)

        if self.config.manage_interfaces:
            if forwarding:
                await system.enable_forwarding(self.shell)
            self.added = await system.apply_interfaces(self.shell, new, roles, self.added, live)
        tables = ["nat"] if await self.runner.apply_table(nat) else []
        changed = await self.runner.apply_files(files)
        return {
            "changedTables": tables,
            "changedFiles": changed,
            "dnsmasq": await self.dnsmasq.ensure(conf, files_changed=bool(changed)),
            "haproxy": await self.haproxy.ensure(lb_conf),
        }


def _save(path: Path, saved: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    part.write_text(json.dumps(saved, sort_keys=True), encoding="utf-8")
    os.replace(part, path)
