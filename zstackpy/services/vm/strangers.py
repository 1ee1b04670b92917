"""Guests a host runs that the database does not know ("strangers", orphans), or knows
as Destroyed (a destroy whose command to the host failed).

A creation whose start's outcome was unknown rolls back and deletes its VM's rows; when
its destroy on the host failed too (the broker reconnecting, the host's owner changing)
the guest runs on with no row to say whose it is. The VM sync lists such guests
(``sync.sync_host``); the node owning the host watches them here:

- each one is logged once (per host) when a sync first sees it;
- with ``vm cleanUpStrangeVms`` (our addition, off by default: see ``configs.py``), one
  that every sync kept seeing for ``vm strangeVmGracePeriod`` s is destroyed with the
  agent's ordinary destroy command, idempotent on the host. The destroy runs in the VM's
  queue on the VM's owner (``DestroyStrangeVmMsg``), so it waits for any operation on that
  uuid, and it happens only if the database still has no row for it then: a VM whose rows
  are being written, or whose creation is still rolling back, is never touched.

A guest missing from one sync starts its grace period again; so does every guest of a
host whose owner changed (the new owner has not watched it yet).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from zstackpy.core.context import NodeContext
from zstackpy.services.vm.configs import CLEAN_UP_STRANGE_VMS, STRANGE_VM_GRACE_PERIOD
from zstackpy.services.vm.extensions import VmOnHost
from zstackpy.services.vm.messages import VmState
from zstackpy.services.vm.models import VmInstanceVO
from zstackpy.services.vm.records import backend_for, vm_host

log = logging.getLogger(__name__)


class StrangerWatch:
    """What the syncs of this node's hosts found: since when each stranger is seen."""

    def __init__(self, ctx: NodeContext) -> None:
        self._ctx = ctx
        self._since: dict[str, dict[str, float]] = {}  # host -> guest -> first seen
        self._destroying: set[str] = set()
        self.destroyed = 0  # guests destroyed (metrics, tests)

    @property
    def seen(self) -> int:
        """Strangers the last sync of each host found."""
        return sum(len(guests) for guests in self._since.values())

    def report(self, host_uuid: str, unknown_vms: list[str]) -> list[str]:
        """Record one sync's strangers on ``host_uuid``; answers those to destroy now (the
        clean-up is on and every sync saw them for the whole grace period)."""
        now = time.monotonic()
        before = self._since.get(host_uuid, {})
        current = {vm_uuid: before.get(vm_uuid, now) for vm_uuid in unknown_vms}
        if current:
            self._since[host_uuid] = current
        else:
            self._since.pop(host_uuid, None)
        new = sorted(current.keys() - before.keys())
        clean_up = bool(self._ctx.configs.value(CLEAN_UP_STRANGE_VMS))
        grace = float(self._ctx.configs.value(STRANGE_VM_GRACE_PERIOD))
        if new:
            log.warning(
                "host %s runs VMs the database does not know or has Destroyed: %s (%s)",
                host_uuid,
                ", ".join(new),
                f"destroyed if still there in {grace:g} s"
                if clean_up
                else "left alone: vm.cleanUpStrangeVms is off",
            )
        if not clean_up:
            return []
        return [
            vm_uuid
            for vm_uuid, since in current.items()
            if now - since >= grace and vm_uuid not in self._destroying
        ]

    def keep_only(self, owned: Callable[[str], bool]) -> None:
        """Forget the hosts this node no longer owns (their new owner watches them)."""
        for host_uuid in [h for h in self._since if not owned(h)]:
            del self._since[host_uuid]

    def destroying(self, vm_uuid: str) -> None:
        self._destroying.add(vm_uuid)

    def done(self, host_uuid: str, vm_uuid: str, destroyed: bool) -> None:
        """A destroy ended; a failed one is tried again after a later sync."""
        self._destroying.discard(vm_uuid)
        if destroyed:
            self.destroyed += 1
            self._since.get(host_uuid, {}).pop(vm_uuid, None)


async def destroy_stranger(ctx: NodeContext, vm_uuid: str, host_uuid: str) -> bool:
    """In the VM's queue: destroy the guest on the host unless the database knows the VM
    now (as anything but Destroyed). A failed database read raises (nothing is destroyed
    on a guess)."""
    async with ctx.db.session() as session:
        vm = await session.get(VmInstanceVO, vm_uuid)
        if vm is not None and vm.state != VmState.DESTROYED:
            log.info("VM %s on host %s is known now: not a stranger", vm_uuid, host_uuid)
            return False
    host = await vm_host(ctx, host_uuid)
    await backend_for(ctx, host.hypervisor_type).destroy_vm(VmOnHost(vm_uuid=vm_uuid, host=host))
    log.warning(
        "destroyed VM %s on host %s: the database does not know it or has it Destroyed "
        "(vm.cleanUpStrangeVms)",
        vm_uuid,
        host_uuid,
    )
    return True
