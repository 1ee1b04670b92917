"""The login kept between runs: ``<config dir>/session.json``, one entry per node URL,
readable by its owner only (a session uuid is a bearer credential)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Login:
    uuid: str
    account: str


class SessionStore:
    def __init__(self, path: Path, base_url: str) -> None:
        self.path, self.base_url = path, base_url

    def _all(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self) -> Login | None:
        entry = self._all().get(self.base_url)
        if not isinstance(entry, dict) or not entry.get("uuid"):
            return None
        return Login(str(entry["uuid"]), str(entry.get("account", "")))

    def save(self, login: Login | None) -> None:
        data = self._all()
        if login is None:
            data.pop(self.base_url, None)
        else:
            data[self.base_url] = {"uuid": login.uuid, "account": login.account}
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        # Created 0600 from the start: never readable by others, not even for a moment.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.chmod(tmp, 0o600)  # an existing tmp file kept its old mode
        tmp.replace(self.path)
