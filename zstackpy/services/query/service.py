"""The ``query`` service: every APIQueryMessage, whatever the resource type, lands here.

Queries only read, so they need no resource queue and run on whichever node the portal
picked. A normal account's queries see only its own resources; the admin sees everything.
"""

from __future__ import annotations

from zstackpy.api.messages import APIQueryMessage, APIQueryReply
from zstackpy.api.query import QueryRegistry, run_query
from zstackpy.core.bus.message import Message, Reply
from zstackpy.core.context import NodeContext
from zstackpy.core.errors import ErrorInfo, SysErr
from zstackpy.core.service import Service


class QueryService(Service):
    name = "query"

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.registry = QueryRegistry()
        for resource in ctx.plugins.queryables:
            self.registry.register(resource)
        for resource_name, field_name, expansion in ctx.plugins.query_expansions:
            self.registry.add_expansion(resource_name, field_name, expansion)
        for resource_name, alias, path in ctx.plugins.query_aliases:
            self.registry.add_alias(resource_name, alias, path)
        for name, builder in ctx.plugins.query_pseudo_fields.items():
            self.registry.register_pseudo_field(name, builder)

    async def start(self) -> None:
        self.registry.validate()

    async def handle(self, msg: Message) -> Reply | None:
        if not isinstance(msg, APIQueryMessage):
            return Reply.failure(
                ErrorInfo(
                    code=SysErr.UNKNOWN_MESSAGE,
                    description=f"the query service does not handle {msg.wire_type()}",
                )
            )
        auth = msg.require_auth()
        reply: APIQueryReply = await run_query(
            self.ctx.db,
            self.registry,
            msg,
            account_uuid=None if auth.is_admin else auth.account_uuid,
        )
        return reply
