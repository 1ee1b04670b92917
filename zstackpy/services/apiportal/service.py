"""The api.portal service: every API message, from any front-end, passes here.

It checks the session (identity), refuses admin-only APIs to other accounts, gives a create
its resource UUID (or checks the caller's), makes a foreign resource look exactly like a
missing one, and forwards the message to its service on the ring owner of its resource.
"""

from __future__ import annotations

from sqlalchemy import select

from zstackpy.api.messages import APICreateMessage, APIMessage, AuthContext
from zstackpy.core.bus.message import Message, Reply
from zstackpy.core.bus.transport import API_PORTAL
from zstackpy.core.db import ResourceVO
from zstackpy.core.errors import ErrorInfo, SysErr, ZError
from zstackpy.core.ids import is_uuid, new_uuid
from zstackpy.core.service import Service
from zstackpy.services.identity.errors import IdentityErr
from zstackpy.services.identity.messages import ValidateSessionMsg, ValidateSessionReply


class ApiPortalService(Service):
    name = API_PORTAL

    async def handle(self, msg: Message) -> Reply | None:
        if not isinstance(msg, APIMessage) or not msg.api_service:
            return Reply.failure(
                ErrorInfo(
                    code=SysErr.UNKNOWN_MESSAGE,
                    description=f"{msg.wire_type()} is not an API message the portal can route",
                    details={"message": msg.wire_type()},
                )
            )
        try:
            await self._admit(msg)
        except ZError as exc:
            return Reply.failure(exc.info())
        # The reply of the owning service is the API's reply, errors included.
        return await self.ctx.bus.call(msg, service=msg.api_service)

    async def _admit(self, msg: APIMessage) -> None:
        spec = msg.api
        if spec is None or spec.needs_session:
            msg.auth = await self._authenticate(msg)
            if spec is not None and spec.admin_only and not msg.auth.is_admin:
                raise ZError(
                    IdentityErr.PERMISSION_DENIED,
                    f"{spec.name} is for the admin account only",
                    api=spec.name,
                )
        if isinstance(msg, APICreateMessage):
            if msg.resource_uuid is None:
                msg.resource_uuid = new_uuid()
            elif not is_uuid(msg.resource_uuid):
                raise ZError(
                    SysErr.INVALID_ARGUMENT,
                    "resourceUuid must be 32 lower-case hex digits",
                    resourceUuid=msg.resource_uuid,
                )
        elif msg.auth is not None and not msg.auth.is_admin:
            await self._check_owner(msg, msg.auth)

    async def _authenticate(self, msg: APIMessage) -> AuthContext:
        if not msg.session_uuid:
            raise ZError(
                IdentityErr.MISSING_SESSION,
                "this API needs a session: log in and send 'Authorization: OAuth <session uuid>'",
            )
        reply = await self.ctx.bus.request(
            ValidateSessionMsg(session_uuid=msg.session_uuid), ValidateSessionReply
        )
        return reply.auth

    async def _check_owner(self, msg: APIMessage, auth: AuthContext) -> None:
        """A normal account may touch only its own resources; another account's resource
        answers exactly as a missing one does, so UUIDs reveal nothing."""
        resource = msg.routing_uuid()
        if resource is None:
            return
        async with self.ctx.db.session() as session:
            owner = (
                await session.execute(
                    select(ResourceVO.account_uuid).where(ResourceVO.uuid == resource)
                )
            ).scalar_one_or_none()
        if owner != auth.account_uuid:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no resource with uuid {resource}",
                uuid=resource,
            )
