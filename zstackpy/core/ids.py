"""Resource and message identifiers: ZStack's 32-hex-digit UUIDs (uuid4 without dashes)."""

import re
import uuid

_UUID_RE = re.compile(r"^[0-9a-f]{32}$")


def new_uuid() -> str:
    return uuid.uuid4().hex


def is_uuid(value: str) -> bool:
    return bool(_UUID_RE.match(value))
