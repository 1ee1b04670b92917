"""The appliance agent's commands (port 7272, the host agents' protocol: async with a
callback) and how the node reaches a router's agent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zstackpy.core.agent import AgentEndpoint
from zstackpy.core.context import NodeContext
from zstackpy.services.virtualrouter.messages import RouterView

INIT = "/init"
PING = "/ping"
ADD_DHCP = "/adddhcp"
REMOVE_DHCP = "/removedhcp"
SET_SNAT = "/setsnat"
REMOVE_SNAT = "/removesnat"
CREATE_EIP = "/createeip"
REMOVE_EIP = "/removeeip"
CREATE_PORT_FORWARDING = "/createportforwarding"
REVOKE_PORT_FORWARDING = "/revokeportforwarding"
REFRESH_LB = "/refreshlb"
DELETE_LB = "/deletelb"

AGENT_TIMEOUT_S = 60.0
# The appliance's own user: its image's, never a host's credentials.
APPLIANCE_USER = "vyos"


def endpoint(router: RouterView) -> AgentEndpoint:
    return AgentEndpoint(
        owner_uuid=router.uuid,
        address=router.management_ip,
        port=router.agent_port,
        token=router.token,
    )


async def call(
    ctx: NodeContext,
    router: RouterView,
    path: str,
    cmd: Mapping[str, Any],
    *,
    timeout: float = AGENT_TIMEOUT_S,  # noqa: ASYNC109 -- agent calls take their own bound
) -> dict[str, Any]:
    """One command on the router's agent. One at a time per router: an add and a remove
    of one entry must reach it in the order they were sent. Raises ZError AGENT.*."""
    return await ctx.agents.call(endpoint(router), path, cmd, timeout=timeout, max_in_flight=1)
