"""Codes of the network-service domain (listed in docs/errors.md)."""

from __future__ import annotations

from enum import StrEnum


class NetworkServiceErr(StrEnum):
    UNKNOWN_PROVIDER = "NS.1001"  # no provider with that uuid
    TYPE_NOT_PROVIDED = "NS.1002"  # the provider does not serve that service type
    TYPE_TAKEN = "NS.1003"  # another provider already serves the type on the L3 network
    IN_USE = "NS.1004"  # detach refused: resources on the network still use the service
    NOT_ENABLED = "NS.1005"  # the L3 network has no provider for the service type


ERROR_STATUSES: dict[str, int] = {
    NetworkServiceErr.UNKNOWN_PROVIDER: 404,
    NetworkServiceErr.TYPE_NOT_PROVIDED: 400,
    NetworkServiceErr.TYPE_TAKEN: 409,
    NetworkServiceErr.IN_USE: 409,
    NetworkServiceErr.NOT_ENABLED: 409,
}
