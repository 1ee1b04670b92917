"""The KVM agent's task journal: task ids that outlive the agent's process.

The runtime's cache answers a repeated task id while the process lives. After a restart
(an upgrade, a crash, the host's reboot) the node may resend a command it got no result
for. The journal is an append-only JSON-lines file: a line when a command starts, a line
with its result when it ends. Read back at start, a finished task answers its result
again, and a task that was running when the process ended answers "lost": it may have
half-happened, so it is not run a second time blind; the node decides (for a VM, its
state sync shows what really happened). Entries older than ``max_age`` are dropped when
the file is read, which rewrites it compactly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE_S = 900.0


def lost_result(task_uuid: str, path: str) -> dict[str, Any]:
    return {
        "success": False,
        "error": f"{path} (task {task_uuid}) was running when the agent restarted; its "
        "outcome is unknown, so it is not run again",
        "details": {"lost": True, "path": path},
    }


class FileJournal:
    """``load`` once before the runtime serves; then the runtime calls ``recall``,
    ``started`` and ``finished`` (``agents.runtime.TaskJournal``)."""

    def __init__(self, path: Path, *, max_age: float = DEFAULT_MAX_AGE_S) -> None:
        self.path = path
        self.max_age = max_age
        self._recalled: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()  # appends in order, one at a time

    async def load(self) -> None:
        self._recalled = await asyncio.to_thread(self._load_and_compact)

    def _load_and_compact(self) -> dict[str, dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        oldest = time.time() - self.max_age
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by the crash this journal is for
            if not isinstance(entry, dict) or entry.get("at", 0) < oldest:
                continue
            task = str(entry.get("task"))
            if "result" in entry:
                path = entry.get("path") or entries.get(task, {}).get("path")
                entries[task] = {"path": path, "at": entry["at"], "result": entry["result"]}
            elif task not in entries:
                entries[task] = {"path": entry.get("path"), "at": entry["at"]}
        recalled = {}
        for task, entry in entries.items():
            result = entry.get("result")
            recalled[task] = (
                result if isinstance(result, dict) else lost_result(task, str(entry.get("path")))
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            "".join(
                json.dumps({"task": t, "path": e.get("path"), "at": e["at"], "result": recalled[t]})
                + "\n"
                for t, e in entries.items()
            ),
            encoding="utf-8",
        )
        tmp.replace(self.path)
        if recalled:
            log.info("task journal: %d task ids known from before this start", len(recalled))
        return recalled

    def recall(self, task_uuid: str) -> dict[str, Any] | None:
        return self._recalled.get(task_uuid)

    async def started(self, task_uuid: str, path: str) -> None:
        await self._append({"task": task_uuid, "path": path, "at": time.time()})

    async def finished(self, task_uuid: str, result: dict[str, Any]) -> None:
        await self._append({"task": task_uuid, "at": time.time(), "result": result})

    async def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry) + "\n"
        async with self._lock:
            await asyncio.to_thread(self._write, line)

    def _write(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
