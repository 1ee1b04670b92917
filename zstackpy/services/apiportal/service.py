"""The api.portal service: routes API messages taken off the shared portal queue."""

from __future__ import annotations

from zstackpy.core.bus.message import Message, Reply
from zstackpy.core.bus.transport import API_PORTAL
from zstackpy.core.errors import ErrorInfo, SysErr
from zstackpy.core.service import Service
from zstackpy.services.apiportal.messages import APIMessage


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
        # The reply of the owning service is the API's reply, errors included.
        return await self.ctx.bus.call(msg, service=msg.api_service)
