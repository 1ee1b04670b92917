"""The api.portal service: every API message, from any front-end, passes here.

It checks the session (identity), refuses admin-only APIs to other accounts, gives a create
its resource UUID (or checks the caller's), makes a foreign resource look exactly like a
missing one, and forwards the message to its service on the ring owner of its resource.
"""

from __future__ import annotations

from zstackpy.api.messages import APICreateMessage, APIMessage, AuthContext
from zstackpy.api.ownership import may_use
from zstackpy.core.bus.message import Message, Reply
from zstackpy.core.bus.transport import API_PORTAL
from zstackpy.core.errors import ErrorInfo, SysErr, ZError
from zstackpy.core.ids import is_uuid, new_uuid
from zstackpy.core.service import Service
from zstackpy.services.identity.errors import IdentityErr
from zstackpy.services.identity.messages import ValidateSessionMsg, ValidateSessionReply
from zstackpy.services.tag.messages import ApplyTagsMsg
from zstackpy.services.tag.patterns import check_system_tags, check_user_tags


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
        reply = await self.ctx.bus.call(msg, service=msg.api_service, timeout=msg.api_timeout_s)
        if reply.success and isinstance(msg, APICreateMessage):
            failure = await self._attach_tags(msg)
            if failure is not None:
                return failure
        return reply

    async def _attach_tags(self, msg: APICreateMessage) -> Reply | None:
        """Tags of a create were checked before it ran; attach them now it succeeded."""
        spec = msg.api
        if spec is None or spec.creates is None or not (msg.system_tags or msg.user_tags):
            return None
        assert msg.resource_uuid is not None
        reply = await self.ctx.bus.call(
            ApplyTagsMsg(
                resource_uuid=msg.resource_uuid,
                resource_type=spec.creates,
                system_tags=msg.system_tags,
                user_tags=msg.user_tags,
                auth=msg.auth,
            )
        )
        return None if reply.success else reply

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
            if spec is not None and spec.creates is not None:
                check_system_tags(
                    self.ctx.plugins.system_tag_patterns, spec.creates, msg.system_tags
                )
                check_user_tags(msg.user_tags)
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
            allowed = await may_use(session, resource, auth)
        if not allowed:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND,
                f"no resource with uuid {resource}",
                uuid=resource,
            )
