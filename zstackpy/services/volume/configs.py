"""Global configs of the volume domain (category ``volume``, names as ZStack's)."""

from __future__ import annotations

from zstackpy.core.config.definitions import GlobalConfigDef

CATEGORY = "volume"

DIRECT, DELAY, NEVER = "Direct", "Delay", "Never"

DELETION_POLICY = GlobalConfigDef(
    category=CATEGORY,
    name="deletionPolicy",
    value_type=str,
    # ZStack's default is Delay (with a timed expunge); ours is Direct until that timed
    # expunge exists, as for images, so deleted volumes do not hold storage forever.
    default=DIRECT,
    choices=(DIRECT, DELAY, NEVER),
    description="what DeleteDataVolume does: Direct removes the volume from its storage at "
    "once; Delay and Never mark it Deleted (RecoverDataVolume restores it, "
    "ExpungeDataVolume removes it; nothing expunges it on its own yet)",
)

VOLUME_CONFIGS = (DELETION_POLICY,)
