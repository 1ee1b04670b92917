"""Codes of the network domain (listed in docs/errors.md).

Malformed input (a bad IP, start after end, a gateway inside its range) answers SYS.1007;
these codes are for requests that are well formed but conflict with what exists.
"""

from __future__ import annotations

from enum import StrEnum


class L2Err(StrEnum):
    DUPLICATE_NETWORK = "L2.1001"  # same physical interface (+ vlan) already used in the zone
    CLUSTER_IN_OTHER_ZONE = "L2.1002"  # attach: the cluster is not in the L2's zone
    ALREADY_ATTACHED = "L2.1003"
    NOT_ATTACHED = "L2.1004"
    BRIDGE_FAILED = "L2.1005"  # a host could not create the bridge; details name the host


class L3Err(StrEnum):
    IP_RANGE_OVERLAP = "L3.1001"  # details name the overlapping range and its L3
    IP_IN_USE = "L3.1002"  # delete of an L3 or a range refused: IPs of it are allocated
    IP_NOT_AVAILABLE = "L3.1003"  # a required IP is taken, the gateway, or outside ranges
    DUPLICATE_DNS = "L3.1004"
    NO_FREE_IP = "L3.1005"  # every IP of the L3 (or of the asked range) is allocated
    ALLOCATION_CONFLICT = "L3.1006"  # the database refused the IPs chosen, retries spent


# HTTP statuses of the errors a client can act on; the rest (a host that failed to make a
# bridge, the allocator's spent retries) answer 503 like ZStack.
ERROR_STATUSES: dict[str, int] = {
    L2Err.DUPLICATE_NETWORK: 409,
    L2Err.CLUSTER_IN_OTHER_ZONE: 400,
    L2Err.ALREADY_ATTACHED: 409,
    L2Err.NOT_ATTACHED: 409,
    L3Err.IP_RANGE_OVERLAP: 409,
    L3Err.IP_IN_USE: 409,
    L3Err.IP_NOT_AVAILABLE: 409,
    L3Err.DUPLICATE_DNS: 409,
    L3Err.NO_FREE_IP: 409,
}
