"""An NFS export as the simulator keeps it: one per url, shared by every mounting machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.machine import TIB

DEFAULT_NFS_CAPACITY = 10 * TIB


@dataclass(slots=True, eq=False)
class NfsShare:
    """One NFS export, seen alike from every machine that mounts it."""

    url: str
    capacity: int = DEFAULT_NFS_CAPACITY
    used: int = 0
    files: dict[str, int] | None = None  # install path -> bytes

    def view(self) -> dict[str, Any]:
        return {"url": self.url, "capacity": self.capacity, "used": self.used}
