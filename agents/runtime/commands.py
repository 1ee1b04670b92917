"""Running a system command from an agent (iptables-restore, ip, dnsmasq, haproxy) without
blocking its loop, its failure a structured agent error."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from agents.runtime.errors import AgentCommandError


async def run_command(
    command: Sequence[str],
    argv0: str,
    *,
    stdin: str | None = None,
    where: str,
    packages: Mapping[str, str],
) -> str:
    """``command``'s stdout (``argv0`` names it in errors: the command proper when an
    ``ip netns exec`` prefix runs it); AgentCommandError with its stderr and exit code when
    it fails, or naming the Debian package (``packages``, else the program's own name) when
    it is not installed on ``where`` ("this host")."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        package = packages.get(command[0], command[0])
        raise AgentCommandError(
            f"{command[0]} is not installed on {where} (Debian package {package})",
            missing=command[0],
        ) from None
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        raise AgentCommandError(
            f"{argv0} failed: {message}",
            command=list(command),
            exitCode=proc.returncode,
            stderr=message,
        )
    return out.decode(errors="replace")
