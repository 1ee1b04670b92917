"""Session checks for the routes the portal does not see (event stream, job traces).

API messages are checked by the portal; these routes answer from the node itself, so they
ask the identity service directly.
"""

from __future__ import annotations

from aiohttp import web

from zstackpy.api.http.decode import session_from_header
from zstackpy.api.messages import AuthContext
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ZError
from zstackpy.services.identity.errors import IdentityErr
from zstackpy.services.identity.messages import ValidateSessionMsg, ValidateSessionReply

# The query parameter a browser's EventSource uses instead of the header it cannot send.
SESSION_QUERY_KEY = "sessionUuid"


async def authenticate(
    ctx: NodeContext, request: web.Request, what: str, *, allow_query: bool = False
) -> AuthContext:
    """Who calls ``request``: the header's session, or with ``allow_query`` the
    ``?sessionUuid=`` parameter when there is no header.

    Raises ZError ID.1005 without a session, ID.1001 for an invalid or expired one."""
    session = session_from_header(request)
    if session is None and allow_query:
        session = request.query.get(SESSION_QUERY_KEY) or None
    if session is None:
        how = "'Authorization: OAuth <session uuid>'"
        if allow_query:
            how += f" or ?{SESSION_QUERY_KEY}=<session uuid>"
        raise ZError(IdentityErr.MISSING_SESSION, f"{what} needs a session: log in and send {how}")
    reply = await ctx.bus.request(ValidateSessionMsg(session_uuid=session), ValidateSessionReply)
    return reply.auth
