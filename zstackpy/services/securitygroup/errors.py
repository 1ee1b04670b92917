"""Codes of the security-group domain (listed in docs/errors.md). Malformed rules (a bad
CIDR, ports out of range) answer SYS.1007."""

from __future__ import annotations

from enum import StrEnum


class SecurityGroupErr(StrEnum):
    DUPLICATE_RULE = "SG.1001"  # the group already has this rule (or the request repeats it)
    L3_NOT_ATTACHED = "SG.1002"  # the NIC's L3 network is not attached to the group
    ALREADY_ATTACHED = "SG.1003"  # the group is already attached to the L3 network
    NOT_ATTACHED = "SG.1004"  # detach of a group from an L3 it is not attached to


ERROR_STATUSES: dict[str, int] = {
    SecurityGroupErr.DUPLICATE_RULE: 409,
    SecurityGroupErr.L3_NOT_ATTACHED: 409,
    SecurityGroupErr.ALREADY_ATTACHED: 409,
    SecurityGroupErr.NOT_ATTACHED: 409,
}
