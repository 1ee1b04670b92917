"""A small synchronous HTTP client of the REST API (stdlib ``http.client``: it imports in a
few milliseconds, and a CLI waits for each answer anyway). One keep-alive connection."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

V1 = "/zstack/v1"
JOBS = V1 + "/api-jobs/"
CONNECT_TIMEOUT_S = 10.0
# A sync API answers within the node's call timeout (30 s by default); async ones at once.
READ_TIMEOUT_S = 300.0


class UnreachableError(Exception):
    """The node did not answer at all (refused, unknown host, timed out)."""


@dataclass
class Answer:
    status: int
    body: Any  # the decoded JSON, or the text when the body is not JSON
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def error(self) -> dict[str, Any] | None:
        """The ``{"code", "description", ...}`` of a failed call, None when it succeeded.
        A non-JSON failure (plain-text 404 of an unknown path) gets a made-up code."""
        if self.status < 400:
            return None
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            error: dict[str, Any] = self.body["error"]
            return error
        return {"code": f"HTTP.{self.status}", "description": str(self.body).strip()}


class Client:
    def __init__(self, host: str, port: int, session_uuid: str | None = None) -> None:
        self.host, self.port = host, port
        self.session_uuid = session_uuid
        self._conn: http.client.HTTPConnection | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """``path`` is absolute (``/zstack/v1/zones``). Raises UnreachableError."""
        url = path + ("?" + urlencode(query) if query else "")
        sent = {"Accept": "application/json", "User-Agent": "zstack-cli"}
        if self.session_uuid:
            sent["Authorization"] = f"OAuth {self.session_uuid}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        # One retry on a fresh connection: the node may have closed an idle keep-alive one.
        for attempt in (0, 1):
            try:
                conn = self._connection()
                conn.request(method, url, body=payload, headers=sent)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise UnreachableError(f"{self.base_url} closed the connection") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise UnreachableError(_reason(exc)) from None
        text = raw.decode(errors="replace")
        try:
            decoded: Any = json.loads(text) if text else None
        except ValueError:
            decoded = text
        return Answer(resp.status, decoded, {k.lower(): v for k, v in resp.getheaders()})

    def job_path(self, location: str) -> str:
        """The path of a 202's job location. Like ZStack's SDK, the host and port we used
        are kept: the node names itself as it was reached, a proxy may rename it."""
        path = urlsplit(location).path
        return path[path.index(JOBS) :] if JOBS in path else path

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=CONNECT_TIMEOUT_S)
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(READ_TIMEOUT_S)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    return str(exc) or type(exc).__name__
