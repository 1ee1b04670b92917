"""What the services using VIPs (EIPs, port forwarding, load balancers) implement for
the VIP service: following a VIP's state (``VipStateExtension``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class VipStateChange:
    """VIP ``vip_uuid`` becomes Enabled (``enabled``) or Disabled."""

    vip_uuid: str
    enabled: bool


class VipStateExtension(Protocol):
    """Called by ChangeVipState in the VIP's queue, for every extension, in registration
    order. A disabled VIP's services stay in the database (attached, with their state)
    but leave the data plane: hosts' and routers' tables hold nothing of them, and
    providers are given none of them until it is enabled again.

    ``follow_vip_state``: put (``enabled``) or take (not ``enabled``) every resource of
    yours on the VIP on or off the hosts and routers, each in its own queue. It is called
    while the VIP's row still says Enabled when it is being disabled, and once it says
    Enabled again when it is being enabled. All or nothing: raise ZError having undone
    what you did; the VIP then stays as it was (the extensions that had followed are
    called again with the opposite state). Never wait for the VIP's queue: it is held."""

    async def follow_vip_state(self, change: VipStateChange) -> None: ...
