"""The first admin account: created at service start when no SystemAdmin account exists.

Its password is ZSTACK_ADMIN_PASSWORD if set, else a generated one printed once to standard
output (never logged). Nodes starting together race on the unique name "admin"; the loser
finds the winner's account and carries on.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import SecretStr

from zstackpy.core.errors import ZError
from zstackpy.core.ids import new_uuid
from zstackpy.services.identity.errors import IdentityErr
from zstackpy.services.identity.messages import AccountType
from zstackpy.services.identity.passwords import Passwords, generate_password, sha512_hex
from zstackpy.services.identity.store import IdentityStore

log = logging.getLogger(__name__)

ADMIN_NAME = "admin"
ANNOUNCE_PREFIX = "zstackpy: admin password (shown once): "


async def ensure_admin(
    store: IdentityStore, passwords: Passwords, admin_password: SecretStr | None
) -> bool:
    """Create the admin account unless a SystemAdmin exists; True if this call created it."""
    if await store.has_system_admin():
        return False
    plain = admin_password.get_secret_value() if admin_password is not None else ""
    generated = not plain
    if generated:
        plain = generate_password()
    # Stored as a client's login would send it: argon2 of the SHA-512 hex digest.
    password_hash = await passwords.hash(sha512_hex(plain))
    try:
        await store.insert_account(
            uuid=new_uuid(),
            name=ADMIN_NAME,
            account_type=AccountType.SYSTEM_ADMIN,
            password_hash=password_hash,
            description="the first administrator, created at the first start",
        )
    except ZError as exc:
        if exc.code != IdentityErr.ACCOUNT_NAME_TAKEN:
            raise
        if await store.has_system_admin():
            log.info("another management node created the admin account first")
        else:
            log.error(
                "no SystemAdmin account exists and the name %r is taken by another account; "
                "nobody can administer this installation",
                ADMIN_NAME,
            )
        return False
    if generated:
        # Written in a thread: stdout may be a pipe or a terminal that blocks.
        await asyncio.to_thread(_announce, plain)
        log.warning(
            "created the admin account with a generated password, printed once to standard "
            "output; set ZSTACK_ADMIN_PASSWORD before the first start to choose it"
        )
    else:
        log.info("created the admin account with the password from ZSTACK_ADMIN_PASSWORD")
    return True


def _announce(plain: str) -> None:
    print(f"{ANNOUNCE_PREFIX}{plain}", flush=True)
