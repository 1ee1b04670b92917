"""Calls of ``VmPlacementExtension`` from the VM's operations (create, start, stop,
migrate, destroy), in the VM's queue: arrivals may refuse, and a refused or failed arrival
is undone on every extension that had agreed; arrivals that happened and departures are
only announced (their errors are logged: the VM's own state is already decided)."""

from __future__ import annotations

import logging
from dataclasses import replace

from zstackpy.core.context import NodeContext
from zstackpy.services.vm.extensions import (
    VmHost,
    VmNicSpec,
    VmPlacementEvent,
    VmPlacementExtension,
)

log = logging.getLogger(__name__)


def event(
    vm_uuid: str,
    host: VmHost,
    nics: tuple[VmNicSpec, ...],
    cause: str,
    hostname: str | None = None,
    system_tags: tuple[str, ...] | None = None,
) -> VmPlacementEvent:
    return VmPlacementEvent(
        vm_uuid=vm_uuid,
        host=host,
        nics=nics,
        cause=cause,
        hostname=hostname,
        system_tags=system_tags,
    )


async def arriving(ctx: NodeContext, ev: VmPlacementEvent) -> None:
    """Every extension agrees, or none keeps anything: those that agreed before one
    refused hear ``vm_left`` (cause ``failed``), then the refusal is raised."""
    agreed: list[VmPlacementExtension] = []
    try:
        for extension in ctx.plugins.extensions(VmPlacementExtension):
            await extension.vm_arriving(ev)
            agreed.append(extension)
    except BaseException:
        await _left(agreed, failed(ev))
        raise


async def arrived(ctx: NodeContext, ev: VmPlacementEvent) -> None:
    for extension in ctx.plugins.extensions(VmPlacementExtension):
        try:
            await extension.vm_arrived(ev)
        except Exception:
            log.exception("VM %s: a placement extension failed after arrival", ev.vm_uuid)


async def appeared(ctx: NodeContext, ev: VmPlacementEvent) -> None:
    """The VM runs on ``ev.host`` without our having started it there (a host's report):
    its services are put there after the fact; a refusal is logged, the VM runs anyway."""
    for extension in ctx.plugins.extensions(VmPlacementExtension):
        try:
            await extension.vm_arriving(ev)
        except Exception:
            log.exception("VM %s: a placement extension refused a VM already there", ev.vm_uuid)
    await arrived(ctx, ev)


async def left(ctx: NodeContext, ev: VmPlacementEvent) -> None:
    await _left(ctx.plugins.extensions(VmPlacementExtension), ev)


def failed(ev: VmPlacementEvent) -> VmPlacementEvent:
    """The same placement, as an arrival that did not happen."""
    return replace(ev, cause="failed")


async def _left(extensions: list[VmPlacementExtension], ev: VmPlacementEvent) -> None:
    for extension in reversed(extensions):
        try:
            await extension.vm_left(ev)
        except Exception:
            log.exception("VM %s: a placement extension failed after departure", ev.vm_uuid)
