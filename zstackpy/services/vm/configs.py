"""Global configs of the VM service (category ``vm``, ZStack's names and defaults)."""

from __future__ import annotations

from zstackpy.core.config.definitions import GlobalConfigDef

CATEGORY = "vm"

DELETION_POLICY = GlobalConfigDef(
    category=CATEGORY,
    name="deletionPolicy",
    value_type=str,
    default="Delay",
    choices=("Direct", "Delay", "Never"),
    description="what DestroyVmInstance does: Direct expunges the VM at once; Delay keeps "
    "it Destroyed (recoverable) until vm.expungePeriod has passed; Never keeps it "
    "Destroyed until ExpungeVmInstance",
)

EXPUNGE_PERIOD = GlobalConfigDef(
    category=CATEGORY,
    name="expungePeriod",
    value_type=int,
    default=86400,
    min=1,
    max=10 * 365 * 86400,
    description="seconds a VM destroyed under the Delay policy stays recoverable before "
    "the expunge task removes it",
)

EXPUNGE_INTERVAL = GlobalConfigDef(
    category=CATEGORY,
    name="expungeInterval",
    value_type=int,
    default=3600,
    min=1,
    max=86400,
    description="seconds between two runs of the task that expunges VMs whose "
    "vm.expungePeriod has passed",
)

TRANSITIONAL_CHECK_INTERVAL = GlobalConfigDef(
    category=CATEGORY,
    name="transitionalCheckInterval",
    value_type=int,
    default=60,
    min=1,
    max=86400,
    description="seconds between two checks for VMs left in a transitional state "
    "(Starting, Stopping...) with no operation running for them; such a VM, transitional "
    "for longer than this, takes the state its host reports",
)

# Our addition (ZStack has no such config): what happens to a guest a host runs that no VM
# row names. Off by default: a database restored from an older backup, or a host another
# manager also uses, would make real workloads look like orphans, and destroying them
# cannot be undone; the orphan is logged (and counted in /metrics) either way.
CLEAN_UP_STRANGE_VMS = GlobalConfigDef(
    category=CATEGORY,
    name="cleanUpStrangeVms",
    value_type=bool,
    default=False,
    description="destroy (the agent's destroy command) a guest a host runs that the "
    "database does not know, once the VM syncs have seen it for vm.strangeVmGracePeriod "
    "seconds; false: only log it",
)

STRANGE_VM_GRACE_PERIOD = GlobalConfigDef(
    category=CATEGORY,
    name="strangeVmGracePeriod",
    value_type=int,
    default=600,
    min=1,
    max=7 * 86400,
    description="seconds the VM syncs must keep seeing a guest the database does not know "
    "before vm.cleanUpStrangeVms destroys it (a creation's rows being written, or its "
    "rollback still at work, never last that long)",
)

VM_CONFIGS = (
    DELETION_POLICY,
    EXPUNGE_PERIOD,
    EXPUNGE_INTERVAL,
    TRANSITIONAL_CHECK_INTERVAL,
    CLEAN_UP_STRANGE_VMS,
    STRANGE_VM_GRACE_PERIOD,
)
