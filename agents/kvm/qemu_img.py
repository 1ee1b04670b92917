"""``qemu-img`` for what libvirt's storage API does not do: reading a file's format and
backing chain, flattening a volume (an offline snapshot merge), rebasing it, and turning
a downloaded image into qcow2.

Every call is an asyncio subprocess, so the agent's loop never waits on it. A failure is
an ``AgentCommandError`` with qemu-img's own words and its exit code; a host without
``qemu-img`` (the ``qemu-utils`` package) gets an error that names the package.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

from agents.runtime import AgentCommandError

QEMU_IMG = "qemu-img"


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """One file of a chain: its format, virtual size, bytes on disk and the file below."""

    path: str
    format: str
    virtual_size: int
    actual_size: int
    backing: str | None


async def run(*args: str) -> str:
    """``qemu-img args...``; its stdout. AgentCommandError with its stderr on failure."""
    try:
        proc = await asyncio.create_subprocess_exec(
            QEMU_IMG,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise AgentCommandError(
            "qemu-img is not installed on this host (Debian package qemu-utils)",
            missing="qemu-img",
        ) from None
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:
        # A cancelled command (the agent stopping) must not leave qemu-img writing.
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        raise AgentCommandError(
            f"qemu-img {args[0]} failed: {message}",
            qemuImgExitCode=proc.returncode,
            qemuImgMessage=message,
        )
    return out.decode(errors="replace")


def _info(raw: dict[str, Any]) -> ImageInfo:
    backing = raw.get("full-backing-filename") or raw.get("backing-filename")
    return ImageInfo(
        path=str(raw.get("filename", "")),
        format=str(raw.get("format", "")),
        virtual_size=int(raw.get("virtual-size", 0)),
        actual_size=int(raw.get("actual-size", 0)),
        backing=str(backing) if backing else None,
    )


async def info(path: str) -> ImageInfo:
    """The format and sizes of the file at ``path`` (the format probed, as for an image
    of unknown kind just downloaded)."""
    return _info(json.loads(await run("info", "--output=json", "-U", path)))


async def chain(path: str) -> list[ImageInfo]:
    """``path`` and every file below it, top first."""
    raw = json.loads(await run("info", "--output=json", "-U", "--backing-chain", path))
    items = raw if isinstance(raw, list) else [raw]
    return [_info(item) for item in items]


async def to_qcow2(src: str, dest: str, src_format: str | None = None) -> None:
    """A self-contained qcow2 ``dest`` with what ``src`` (and its chain) reads as."""
    fmt = ["-f", src_format] if src_format else []
    await run("convert", *fmt, "-O", "qcow2", src, dest)


async def rebase(path: str, backing: str) -> None:
    """Put ``backing`` under ``path`` (a qcow2 file), copying into ``path`` whatever the
    files between them held, so the guest's view does not change."""
    await run("rebase", "-f", "qcow2", "-F", "qcow2", "-b", backing, path)


def same_path(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are one path once normalised (``chain`` gives full
    backing names, so no look at the disk is needed)."""
    return os.path.normpath(a) == os.path.normpath(b)
