"""The six invariants, judged after a fault has healed.

1. No lost job: every accepted call ended, in success or a structured error.
2. No stuck state: no VM or host stays transitional past the bound.
3. The database agrees with the hosts: every VM the database places on a host runs there
   in that state, every guest a machine runs is a VM the database places there.
4. No duplicate effect: no agent task ran twice, and no VM was started on a host more
   often than the operations that start it were accepted.
5. Bounded recovery: the system serves again, every host is pinged and Connected, within
   the bound the fault states.
6. Clean errors: every request got an answer (no hang) and every error has a code.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from simulator.chaos.workload import NoNodeError, Op, Outcome, Rest

TRANSITIONAL_VM = frozenset(
    {
        "Created",
        "Starting",
        "Stopping",
        "Rebooting",
        "Pausing",
        "Resuming",
        "Migrating",
        "Destroying",
        "Expunging",
    }
)
ON_HOST = frozenset({"Running", "Paused"})
OFF_HOST = frozenset({"Stopped", "Destroyed", "Error"})
PAGE = 1000


@dataclass
class Verdict:
    accepted: int = 0
    succeeded: int = 0
    failed: int = 0  # failed with a clear error (accepted, or refused with a code)
    lost: int = 0
    unclear: int = 0
    hung: int = 0
    stuck: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    during_fault: int = 0  # operations in flight while the fault lasted
    recovery_s: float | None = None
    recovery_bound_s: float | None = None
    errors: Counter[str] = field(default_factory=Counter)
    # What the fault saw go wrong while it lasted (db-outage-long: commands not held)
    fault_violations: list[str] = field(default_factory=list)

    @property
    def recovered_in_bound(self) -> bool:
        if self.recovery_bound_s is None:
            return self.recovery_s is not None  # within the settle bound, at least
        return self.recovery_s is not None and self.recovery_s <= self.recovery_bound_s

    @property
    def holds(self) -> bool:
        return (
            self.lost == 0
            and self.unclear == 0
            and self.hung == 0
            and not self.stuck
            and not self.disagreements
            and not self.duplicates
            and self.recovered_in_bound
            and not self.fault_violations
        )

    def violations(self) -> list[str]:
        out = []
        if self.lost:
            out.append(f"{self.lost} jobs lost")
        if self.unclear:
            out.append(f"{self.unclear} errors without a code")
        if self.hung:
            out.append(f"{self.hung} requests hung")
        out += [f"stuck: {s}" for s in self.stuck[:10]]
        out += [f"DB vs host: {d}" for d in self.disagreements[:10]]
        out += [f"duplicate: {d}" for d in self.duplicates[:10]]
        if not self.recovered_in_bound and self.recovery_s is None:
            out.append("no recovery within the settle bound")
        elif not self.recovered_in_bound:
            out.append(f"recovery {self.recovery_s} s past the bound {self.recovery_bound_s} s")
        out += self.fault_violations
        return out


def count_jobs(records: list[Op], verdict: Verdict, hung_requests: int) -> None:
    """Invariants 1 and 6 from the workload's records."""
    for op in records:
        verdict.accepted += op.accepted
        if op.outcome is Outcome.SUCCEEDED:
            verdict.succeeded += 1
        elif op.outcome in (Outcome.FAILED, Outcome.REJECTED):
            verdict.failed += 1
            verdict.errors[op.error_code or "?"] += 1
        elif op.outcome is Outcome.LOST:
            verdict.lost += 1
        elif op.outcome is Outcome.UNCLEAR:
            verdict.unclear += 1
        elif op.outcome is Outcome.UNREACHABLE:
            verdict.errors["unreachable (never accepted)"] += 1
    verdict.hung = hung_requests


async def query_all(rest: Rest, path: str, q: str = "") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    start = 0
    while True:
        sep = "&" if q else ""
        answer = await rest.call("GET", f"{path}?{q}{sep}limit={PAGE}&start={start}")
        if answer.status != 200:
            raise RuntimeError(f"GET {path}: {answer.status} {answer.body}")
        page = answer.body.get("inventories") or []
        out += page
        if len(page) < PAGE:
            return out
        start += PAGE


async def sim_machines(http: aiohttp.ClientSession, sim_url: str) -> list[dict[str, Any]]:
    async with http.get(f"{sim_url}/simulator/hosts") as resp:
        machines: list[dict[str, Any]] = await resp.json()
    return machines


async def sim_ledger(http: aiohttp.ClientSession, sim_url: str) -> dict[str, Any]:
    async with http.get(f"{sim_url}/simulator/ledger") as resp:
        ledger: dict[str, Any] = await resp.json()
    return ledger


async def stuck(rest: Rest) -> list[str]:
    """Invariant 2, now: VMs in a transitional state, hosts Connecting."""
    out = []
    for vm in await query_all(rest, "/vm-instances"):
        if vm["state"] in TRANSITIONAL_VM:
            out.append(f"VM {vm['uuid']} {vm['state']}")
    for host in await query_all(rest, "/hosts"):
        if host["status"] == "Connecting":
            out.append(f"host {host['managementIp']} Connecting")
    return out


async def disagreements(rest: Rest, http: aiohttp.ClientSession, sim_url: str) -> list[str]:
    """Invariant 3, now."""
    hosts = {h["uuid"]: h for h in await query_all(rest, "/hosts")}
    vms = {v["uuid"]: v for v in await query_all(rest, "/vm-instances")}
    on_machine: dict[str, tuple[str, str]] = {}  # vm -> (address, state)
    for machine in await sim_machines(http, sim_url):
        for vm_uuid, vm in (machine.get("vms") or {}).items():
            on_machine[vm_uuid] = (machine["address"], vm["state"])
    out = []
    for vm in vms.values():
        where = on_machine.get(vm["uuid"])
        state = vm["state"]
        if state in ON_HOST:
            host = hosts.get(vm.get("hostUuid") or "")
            address = host["managementIp"] if host else None
            if where is None or where != (address, state):
                out.append(f"VM {vm['uuid']} is {state} on {address} in the DB, {where} on hosts")
        elif state in OFF_HOST and where is not None:
            out.append(f"VM {vm['uuid']} is {state} in the DB but {where} on hosts")
        elif state == "Unknown":
            out.append(f"VM {vm['uuid']} is Unknown in the DB, {where} on hosts")
    for vm_uuid, where in on_machine.items():
        if vm_uuid not in vms:
            out.append(f"guest {vm_uuid} runs on {where[0]} but the DB has no such VM")
    return out


async def duplicates(http: aiohttp.ClientSession, sim_url: str, records: list[Op]) -> list[str]:
    """Invariant 4: agent task ids that ran twice; VMs started more often than asked."""
    ledger = await sim_ledger(http, sim_url)
    out = [f"task {d['taskUuid']} ({d['path']}) ran twice" for d in ledger["duplicates"]]
    asked: Counter[str] = Counter()
    for op in records:
        if op.accepted and op.kind in ("create", "start"):
            asked[op.vm_uuid] += 1
    for vm_uuid, effects in ledger["vmEffects"].items():
        starts = effects.get("/vm/start", 0)
        if starts > asked[vm_uuid]:
            out.append(f"VM {vm_uuid} started {starts} times for {asked[vm_uuid]} operations")
    return out


async def eventually(
    check: Callable[[], Awaitable[list[str]]], bound_s: float, poll_s: float = 1.0
) -> list[str]:
    """``check`` until it finds nothing or ``bound_s`` passed; what it found last."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound_s
    while True:
        try:
            found = await check()
        except (NoNodeError, TimeoutError, RuntimeError) as exc:
            found = [f"could not check: {exc}"]
        if not found or loop.time() >= deadline:
            return found
        await asyncio.sleep(poll_s)
