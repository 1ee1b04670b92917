"""Global configs of KVM hosts (category ``kvm``, ZStack's names and defaults)."""

from __future__ import annotations

from zstackpy.core.config.definitions import GlobalConfigDef

CATEGORY = "kvm"

RESERVED_MEMORY = GlobalConfigDef(
    category=CATEGORY,
    name="reservedMemory",
    value_type=int,
    default=1 << 30,  # ZStack's "1G"
    min=0,
    max=1 << 50,
    description="bytes of each KVM host's memory kept for the host itself (not offered "
    "to VMs); read at each connect",
)

SYNC_LEVEL = GlobalConfigDef(
    category=CATEGORY,
    name="host.syncLevel",
    value_type=int,
    default=10,
    min=1,
    max=1000,
    description="agent commands in flight at once per KVM host; more wait in order",
)

VM_SYNC_ON_HOST_PING = GlobalConfigDef(
    category=CATEGORY,
    name="vmSyncOnHostPing",
    value_type=bool,
    default=True,
    description="after each successful ping of a Connected KVM host, compare its VM list "
    "with the database and correct the database (as at a reconnect)",
)

KVM_CONFIGS = (RESERVED_MEMORY, SYNC_LEVEL, VM_SYNC_ON_HOST_PING)
