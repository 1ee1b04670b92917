"""The flat network services' host commands: security groups, EIPs, port forwarding,
DHCP/DNS and userdata, as the simulator serves them (``simulator/kvm_network.py``).

Each command makes a new ``NetState`` from the current one (``netrules.py``; validated
whole first, so bad input changes nothing), renders the rule sets (``netrender.py``), has
the runner (``netrunner.py``) put in place what differs, and only then keeps the new state, also on
disk (``<state_dir>/network.json``): an agent restarted between two commands renders the
next one over everything the node told it, not over nothing. A command that failed to
apply leaves the state as it was, and the next command applies the whole set again.

DHCP, DNS and userdata are served from a network namespace per L3 network
(``dhcpns.py``), joined to the network's bridge by a veth pair: a dnsmasq in it
(``dnsmasq.py``) on the DHCP server's address, the metadata server (``metadata.py``)
listening in it on 169.254.169.254:80. The namespace goes with the last entry of its
network (or ``dhcp/deletenamespace``); the host's bridge itself holds no address. None of
it runs in ``dry`` mode (rules and files only).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from agents.kvm import dhcpns, netrender, netrules
from agents.kvm.dnsmasq import Dnsmasq, DnsmasqSpec
from agents.kvm.metadata import MetadataServer
from agents.kvm.netrules import NetState
from agents.kvm.netrunner import NetRunner
from agents.runtime import AgentCommandError, AgentRuntime

log = logging.getLogger(__name__)


class NetworkCommands:
    def __init__(
        self,
        runtime: AgentRuntime,
        state_dir: Path,
        netns: str = "",
        *,
        dry: bool = False,
    ) -> None:
        self.runtime = runtime
        self.state_file = state_dir / "network.json"
        self.runner = NetRunner(state_dir / "dnsmasq", netns, dry=dry)
        self.userdata_dir = state_dir / "userdata"
        self.metadata = MetadataServer(self.userdata_dir)
        self.dnsmasq = Dnsmasq(state_dir / "dnsmasq", state_dir / "dnsmasq-run")
        # A test's stand-in host (``netns``) names its L3 namespaces after itself, so two
        # such hosts on one machine never take each other's.
        self.namespaces = dhcpns.Namespaces(f"{netns}-l3-" if netns else "zs-l3-", netns)
        self.dry = dry
        self.state = NetState()
        self._full_sync = True  # compare every namespace with what is live, next time

    def register(self) -> None:
        rt = self.runtime
        rt.command("/securitygroup/refreshrulesonhost", self.refresh_rules)
        rt.command("/flatnetworkprovider/dhcp/apply", self.apply_dhcp)
        rt.command("/flatnetworkprovider/dhcp/release", self.release_dhcp)
        rt.command("/flatnetworkprovider/dhcp/deletenamespace", self.delete_namespace)
        for path in (
            "/flatnetworkprovider/userdata/apply",
            "/flatnetworkprovider/userdata/batchapply",
        ):
            rt.command(path, self.apply_userdata)
        rt.command("/flatnetworkprovider/userdata/release", self.release_userdata)
        for path in ("/flatnetworkprovider/eip/apply", "/flatnetworkprovider/eip/batchapply"):
            rt.command(path, self.apply_eip)
        for path in ("/flatnetworkprovider/eip/delete", "/flatnetworkprovider/eip/batchdelete"):
            rt.command(path, self.delete_eip)
        base = "/flatnetworkprovider/portforwarding"
        for path in (f"{base}/apply", f"{base}/batchapply"):
            rt.command(path, self.apply_forwards)
        for path in (f"{base}/delete", f"{base}/batchdelete"):
            rt.command(path, self.delete_forwards)

    async def load(self) -> None:
        """The state the last run kept (none on a new host)."""
        try:
            text = await asyncio.to_thread(self.state_file.read_text, encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            self.state = NetState.from_json(json.loads(text))
        except (ValueError, AgentCommandError) as exc:
            # The node rebuilds every table on reconnect: starting empty is safe.
            log.warning("ignoring %s, which cannot be read: %s", self.state_file, exc)
            return
        try:
            dhcpns.wanted(self.state, self.namespaces.prefix)
        except AgentCommandError as exc:
            # Kept by an agent before namespaces (no server address): the node sends them
            # again, whole, when the host reconnects.
            log.warning("dropping the kept DHCP entries and userdata: %s", exc)
            self.state = replace(self.state, dhcp={}, userdata={})
        if self.dry:
            return
        if self.state.userdata or self.state.dhcp or await self.namespaces.live():
            # Guests ask for addresses and read their userdata at any boot, not only
            # after the node's next command; namespaces of networks that left while the
            # agent was down go.
            try:
                await self._change(lambda s: s)
            except AgentCommandError as exc:
                log.warning("the kept network services could not be applied: %s", exc)

    async def close(self) -> None:
        await self.metadata.stop()
        await self.dnsmasq.stop_all()

    async def _change(self, make: Callable[[NetState], NetState]) -> dict[str, Any]:
        async with self.runner.lock:
            new = make(self.state)
            namespaces = dhcpns.wanted(new, self.namespaces.prefix)  # validates first
            changed = []
            for wanted in (netrender.render_security_groups(new), netrender.render_nat(new)):
                if await self.runner.apply_table(wanted):
                    changed.append(wanted.table)
            files = await self.runner.apply_files(netrender.render_dnsmasq(new, netrender.by_l3))
            served = await self.runner.apply_tree(self.userdata_dir, netrender.render_userdata(new))
            if not self.dry:
                await self._serve(new, namespaces, files)
            files += [f"userdata/{name}" for name in served]
            await asyncio.to_thread(_save, self.state_file, new.to_json())
            self.state = new
        return {"changedTables": changed, "changedFiles": files}

    async def _serve(
        self, new: NetState, namespaces: dict[str, dhcpns.L3Namespace], files: list[str]
    ) -> None:
        """The namespaces, their dnsmasq and metadata listeners brought to ``new``."""
        ranges = netrender.dhcp_ranges(new, netrender.by_l3)
        dnsmasq = {
            l3: DnsmasqSpec(ns.name, ns.inner, ranges[l3])
            for l3, ns in namespaces.items()
            if ns.serves_dhcp
        }
        metadata = {l3: ns.name for l3, ns in namespaces.items() if ns.serves_metadata}
        full, self._full_sync = self._full_sync, True  # a failure below: look at all again
        # What runs in a namespace stops before the namespace goes.
        for l3 in set(self.metadata.listening()) - set(metadata):
            await self.metadata.close(l3)
        for l3 in self.dnsmasq.names() - set(dnsmasq):
            await self.dnsmasq.stop(l3)
        made, _ = await self.namespaces.sync(namespaces, full=full)
        remade = {ns.l3 for ns in namespaces.values() if ns.name in made}
        await self.dnsmasq.sync(dnsmasq, files, remade)
        await self.metadata.sync(metadata, made)
        self._full_sync = False

    async def refresh_rules(self, cmd: dict[str, Any]) -> dict[str, Any]:
        tos = netrules.entries(cmd, "ruleTOs")
        members = cmd.get("securityGroupMembers") or {}
        return await self._change(lambda s: netrules.with_security_groups(s, tos, members))

    async def apply_dhcp(self, cmd: dict[str, Any]) -> dict[str, Any]:
        entries, rebuild = netrules.entries(cmd, "dhcp"), cmd.get("rebuild") is True
        return await self._change(lambda s: netrules.with_dhcp(s, entries, rebuild=rebuild))

    async def release_dhcp(self, cmd: dict[str, Any]) -> dict[str, Any]:
        entries = netrules.entries(cmd, "dhcp")
        return await self._change(lambda s: netrules.without_dhcp(s, entries))

    async def delete_namespace(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """The L3 network's entries go, and with them its namespace, veth pair, dnsmasq
        and metadata listener (the L3 network was deleted, or its DHCP detached)."""
        l3 = netrules.l3_of(cmd)
        return await self._change(lambda s: netrules.without_l3(s, l3))

    async def apply_eip(self, cmd: dict[str, Any]) -> dict[str, Any]:
        eips, rebuild = netrules.commanded(cmd, "eip", "eips"), cmd.get("rebuild") is True
        return await self._change(lambda s: netrules.with_eips(s, eips, rebuild=rebuild))

    async def delete_eip(self, cmd: dict[str, Any]) -> dict[str, Any]:
        eips = netrules.commanded(cmd, "eip", "eips")
        return await self._change(lambda s: netrules.without_eips(s, eips))

    async def apply_forwards(self, cmd: dict[str, Any]) -> dict[str, Any]:
        rules, rebuild = netrules.commanded(cmd, "rule", "rules"), cmd.get("rebuild") is True
        return await self._change(lambda s: netrules.with_forwards(s, rules, rebuild=rebuild))

    async def delete_forwards(self, cmd: dict[str, Any]) -> dict[str, Any]:
        rules = netrules.commanded(cmd, "rule", "rules")
        return await self._change(lambda s: netrules.without_forwards(s, rules))

    async def apply_userdata(self, cmd: dict[str, Any]) -> dict[str, Any]:
        # ``userdata``: one entry (apply) or a list of them (batchapply).
        one = cmd.get("userdata")
        entries = [one] if isinstance(one, dict) else netrules.entries(cmd, "userdata")
        rebuild = cmd.get("rebuild")
        return await self._change(
            lambda s: netrules.with_userdata(s, entries, rebuild=rebuild is True)
        )

    async def release_userdata(self, cmd: dict[str, Any]) -> dict[str, Any]:
        entries = netrules.entries(cmd, "userdata")
        return await self._change(lambda s: netrules.without_userdata(s, entries))


def _save(path: Path, saved: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    part.write_text(json.dumps(saved, sort_keys=True), encoding="utf-8")
    os.replace(part, path)
