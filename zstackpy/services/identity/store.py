"""The identity service's database work: short transactions on AccountVO, SessionVO and the
accounts' ResourceVO rows. Every write that the API can trigger changes nothing when it
fails.

Dates are written from this node's clock, in naive UTC without microseconds: MariaDB's
DATETIME keeps whole seconds, and what a reply shows must be what is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from zstackpy.api.messages import AuthContext
from zstackpy.core.clock import utcnow_seconds
from zstackpy.core.db import Database, ResourceVO
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.ids import new_uuid
from zstackpy.services.identity.errors import IdentityErr
from zstackpy.services.identity.messages import (
    AccountInventory,
    AccountType,
    SessionInventory,
)
from zstackpy.services.identity.models import AccountVO, SessionVO

ACCOUNT_RESOURCE_TYPE = "AccountVO"
# ZStack's userType of a session opened by LogInByAccount.
ACCOUNT_USER_TYPE = "AccountVO"


def account_inventory(vo: AccountVO) -> AccountInventory:
    return AccountInventory(
        uuid=vo.uuid,
        name=vo.name,
        description=vo.description,
        type=vo.type,
        create_date=vo.create_date,
        last_op_date=vo.last_op_date,
    )


def session_inventory(vo: SessionVO) -> SessionInventory:
    return SessionInventory(
        uuid=vo.uuid,
        account_uuid=vo.account_uuid,
        user_uuid=vo.user_uuid,
        user_type=ACCOUNT_USER_TYPE if vo.user_uuid == vo.account_uuid else None,
        expired_date=vo.expired_date,
        create_date=vo.create_date,
    )


@dataclass(frozen=True, slots=True)
class AccountChange:
    """What UpdateAccount changes; None leaves a column as it is."""

    name: str | None = None
    description: str | None = None
    password_hash: str | None = None


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ----- accounts --------------------------------------------------------------------

    async def has_system_admin(self) -> bool:
        async with self.db.session() as session:
            found = await session.execute(
                select(AccountVO.uuid).where(AccountVO.type == AccountType.SYSTEM_ADMIN).limit(1)
            )
            return found.first() is not None

    async def account(self, uuid: str) -> AccountVO | None:
        async with self.db.session() as session:
            return await session.get(AccountVO, uuid)

    async def account_by_name(self, name: str) -> AccountVO | None:
        """The account named exactly ``name``. MariaDB's default collation compares names
        without case; the check in Python keeps "Admin" from reaching "admin" there (and so
        from dodging the per-name login throttle), as on SQLite."""
        async with self.db.session() as session:
            rows = (
                await session.execute(select(AccountVO).where(AccountVO.name == name))
            ).scalars()
            return next((row for row in rows if row.name == name), None)

    async def insert_account(
        self,
        *,
        uuid: str,
        name: str,
        account_type: AccountType,
        password_hash: str,
        description: str | None,
    ) -> AccountVO:
        """Insert the account and its ResourceVO row (the account owns itself).

        Raises ZError(ACCOUNT_NAME_TAKEN) if the name exists, ZError(SYS.1002) if the UUID
        is another resource's.
        """
        now = utcnow_seconds()
        account = AccountVO(
            uuid=uuid,
            name=name,
            type=account_type,
            password_hash=password_hash,
            description=description,
            create_date=now,
            last_op_date=now,
        )
        try:
            async with self.db.session() as session, session.begin():
                session.add(account)
                # Flushed first: the ResourceVO row must not hide a clash of names.
                await session.flush()
                session.add(
                    ResourceVO(
                        uuid=uuid,
                        resource_type=ACCOUNT_RESOURCE_TYPE,
                        resource_name=name,
                        account_uuid=uuid,
                        create_date=now,
                        last_op_date=now,
                    )
                )
        except IntegrityError:
            raise await self._clash(uuid, name) from None
        return account

    async def update_account(self, uuid: str, change: AccountChange) -> AccountVO:
        """Apply ``change``. Raises ZError(SYS.1003) for a missing account,
        ZError(ACCOUNT_NAME_TAKEN) for a name another account has."""
        try:
            async with self.db.session() as session, session.begin():
                account = await session.get(AccountVO, uuid, with_for_update=True)
                if account is None:
                    raise _account_not_found(uuid)
                if change.name is not None and change.name != account.name:
                    account.name = change.name
                    await session.execute(
                        update(ResourceVO)
                        .where(ResourceVO.uuid == uuid)
                        .values(resource_name=change.name)
                    )
                if change.description is not None:
                    account.description = change.description
                if change.password_hash is not None:
                    account.password_hash = change.password_hash
                account.last_op_date = utcnow_seconds()
                # Within the same second the value equals the loaded one, so the flush leaves
                # it out and the column's server-side onupdate expires it: reload it here, the
                # caller reads the row after the session is gone.
                await session.flush()
                await session.refresh(account, ["last_op_date"])
        except IntegrityError:
            raise _name_taken(change.name or "") from None
        return account

    async def set_password_hash(self, uuid: str, password_hash: str) -> None:
        """Replace the hash without touching last_op_date (a rehash is not a change)."""
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(AccountVO)
                .where(AccountVO.uuid == uuid)
                .values(password_hash=password_hash, last_op_date=AccountVO.last_op_date)
            )

    async def delete_account(self, uuid: str) -> None:
        """Delete the account, its sessions and its ResourceVO row; no-op if missing."""
        async with self.db.session() as session, session.begin():
            await session.execute(delete(SessionVO).where(SessionVO.account_uuid == uuid))
            await session.execute(delete(AccountVO).where(AccountVO.uuid == uuid))
            await session.execute(
                delete(ResourceVO)
                .where(ResourceVO.uuid == uuid)
                .where(ResourceVO.resource_type == ACCOUNT_RESOURCE_TYPE)
            )

    async def _clash(self, uuid: str, name: str) -> ZError:
        async with self.db.session() as session:
            taken = await session.execute(select(AccountVO.name).where(AccountVO.name == name))
            if any(row == name for row in taken.scalars()):
                return _name_taken(name)
            used = await session.get(ResourceVO, uuid)
        if used is not None:
            return ZError(
                SysErr.CREATE_RESOURCE,
                f"uuid {uuid} is already used by another resource",
                uuid=uuid,
            )
        # Neither exists now: the clashing row was deleted since. Say what is likeliest.
        return _name_taken(name)

    # ----- sessions --------------------------------------------------------------------

    async def create_session(self, account_uuid: str, timeout_s: int) -> SessionVO:
        now = utcnow_seconds()
        vo = SessionVO(
            uuid=new_uuid(),
            account_uuid=account_uuid,
            # A session opened by an account is its own user, as in ZStack.
            user_uuid=account_uuid,
            expired_date=now + timedelta(seconds=timeout_s),
            create_date=now,
        )
        async with self.db.session() as session, session.begin():
            session.add(vo)
        return vo

    async def session_auth(self, session_uuid: str) -> AuthContext | None:
        """The AuthContext of a live session; None for an unknown or expired one."""
        live = await self.live_session(session_uuid)
        return live[0] if live is not None else None

    async def live_session(self, session_uuid: str) -> tuple[AuthContext, datetime] | None:
        """A live session's AuthContext and expiry (UTC); None for an unknown or expired one."""
        async with self.db.session() as session:
            row = (
                await session.execute(
                    select(
                        SessionVO.account_uuid,
                        SessionVO.user_uuid,
                        SessionVO.expired_date,
                        AccountVO.type,
                    )
                    .join(AccountVO, AccountVO.uuid == SessionVO.account_uuid)
                    .where(SessionVO.uuid == session_uuid)
                )
            ).one_or_none()
        if row is None or row.expired_date <= utcnow_seconds():
            return None
        auth = AuthContext(
            session_uuid=session_uuid,
            account_uuid=row.account_uuid,
            user_uuid=row.user_uuid,
            is_admin=row.type == AccountType.SYSTEM_ADMIN,
        )
        return auth, row.expired_date

    async def delete_session(self, session_uuid: str) -> None:
        async with self.db.session() as session, session.begin():
            await session.execute(delete(SessionVO).where(SessionVO.uuid == session_uuid))

    async def purge_expired_sessions(self) -> int:
        async with self.db.session() as session, session.begin():
            result = await session.execute(
                delete(SessionVO).where(SessionVO.expired_date <= utcnow_seconds())
            )
        count: int = getattr(result, "rowcount", 0) or 0
        return count


def _name_taken(name: str) -> ZError:
    return ZError(
        IdentityErr.ACCOUNT_NAME_TAKEN,
        f"an account named {name!r} already exists",
        name=name,
    )


def _account_not_found(uuid: str) -> ZError:
    return ZError(SysErr.RESOURCE_NOT_FOUND, f"no account with uuid {uuid}", uuid=uuid)
