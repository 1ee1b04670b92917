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

VM_CONFIGS = (DELETION_POLICY, EXPUNGE_PERIOD, EXPUNGE_INTERVAL, TRANSITIONAL_CHECK_INTERVAL)
