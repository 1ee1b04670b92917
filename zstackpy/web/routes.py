"""Serve the UI's static files with cache headers that fit how each one is named.

A file whose name carries a content hash (``app.3f9a0c1d.js``) never changes under that
name: browsers may keep it for a year. Every other file (``index.html``, the hand-written
modules) keeps its name across releases, so browsers must revalidate it on each use; the
``Last-Modified`` that aiohttp sends makes that a cheap 304.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
UI_PREFIX = "/ui/"

_HASHED = re.compile(r"\.[0-9a-f]{8,}\.\w+$")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def cache_control(name: str) -> str:
    return IMMUTABLE if _HASHED.search(name) else REVALIDATE


def _file(path: Path) -> web.FileResponse:
    response = web.FileResponse(path)
    response.headers["Cache-Control"] = cache_control(path.name)
    return response


class _StaticFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def index(self, request: web.Request) -> web.StreamResponse:
        return _file(self.root / "index.html")

    async def asset(self, request: web.Request) -> web.StreamResponse:
        # Checked by its text, not on disk (no blocking calls on the loop): no '..', no
        # absolute path, so nothing outside the root; FileResponse answers 404 for a
        # missing file.
        relative = PurePosixPath(request.match_info["path"])
        if relative.is_absolute() or any(p in ("..", ".", "") for p in relative.parts):
            raise web.HTTPNotFound()
        return _file(self.root.joinpath(*relative.parts))


def mount_web(app: web.Application, root: Path = STATIC_DIR) -> None:
    """Add ``GET /`` and ``GET /ui/{path}`` to ``app``."""
    files = _StaticFiles(root)
    app.router.add_get("/", files.index)
    app.router.add_get(UI_PREFIX + "{path:.+}", files.asset)
