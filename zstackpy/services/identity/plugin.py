"""Registers the identity service, its global configs and the Account queryable (called by
the built-in plugin)."""

from __future__ import annotations

from zstackpy.api.query import QueryableResource
from zstackpy.core.plugin import PluginRegistry
from zstackpy.services.identity.configs import IDENTITY_CONFIGS
from zstackpy.services.identity.messages import AccountInventory
from zstackpy.services.identity.models import AccountVO
from zstackpy.services.identity.service import IdentityService

# AccountInventory has no password field, so the hash is neither returned nor queryable.
ACCOUNT_QUERYABLE = QueryableResource(name="Account", model=AccountVO, inventory=AccountInventory)


def register_identity(registry: PluginRegistry) -> None:
    registry.add_service(IdentityService)
    for definition in IDENTITY_CONFIGS:
        registry.add_global_config(definition)
    registry.add_queryable(ACCOUNT_QUERYABLE)
