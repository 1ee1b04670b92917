"""Global configs of the image domain (category ``image``, names as ZStack's)."""

from __future__ import annotations

from zstackpy.core.config.definitions import GlobalConfigDef

CATEGORY = "image"

DIRECT, DELAY, NEVER = "Direct", "Delay", "Never"

DELETION_POLICY = GlobalConfigDef(
    category=CATEGORY,
    name="deletionPolicy",
    value_type=str,
    # ZStack's default is Delay (with a timed expunge); ours is Direct until that timed
    # expunge exists, so deleted images do not hold backup storage forever by default.
    default=DIRECT,
    choices=(DIRECT, DELAY, NEVER),
    description="what DeleteImage does: Direct deletes the copies from backup storage at "
    "once; Delay and Never mark them Deleted (RecoverImage restores them, ExpungeImage "
    "removes them; nothing expunges them on its own yet)",
)

IMAGE_CONFIGS = (DELETION_POLICY,)
