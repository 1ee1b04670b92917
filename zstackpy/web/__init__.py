"""The web UI: static files (``static/``) the node serves, a client of the public REST API
and the event stream like any other.

``/`` answers ``index.html``; everything else lives under ``/ui/`` so the UI can never
shadow ``/zstack/...``, ``/health`` or the agents' callback paths.
"""

from zstackpy.web.routes import STATIC_DIR, UI_PREFIX, mount_web

__all__ = ["STATIC_DIR", "UI_PREFIX", "mount_web"]
