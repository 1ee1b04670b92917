"""IdentityService: logins, sessions and accounts.

API messages reach it through the API portal, which has already checked the session and
refused admin-only APIs to other accounts; the handlers check again what they rely on.
On start it creates the admin account if no SystemAdmin exists, and it purges expired
sessions in a background task it owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from zstackpy.api.messages import APIMessage, AuthContext
from zstackpy.core.bus.message import Reply
from zstackpy.core.errors import SysErr, ZError
from zstackpy.core.ids import new_uuid
from zstackpy.core.service import Service, handles
from zstackpy.core.workqueue import QueueKey
from zstackpy.services.identity.bootstrap import ensure_admin
from zstackpy.services.identity.configs import (
    LOGIN_FAILURE_WINDOW,
    LOGIN_LOCK_DURATION,
    LOGIN_MAX_FAILURES,
    SESSION_CLEANUP_INTERVAL,
    SESSION_TIMEOUT,
)
from zstackpy.services.identity.errors import IdentityErr
from zstackpy.services.identity.messages import (
    IDENTITY_SERVICE,
    AccountType,
    APICreateAccountEvent,
    APICreateAccountMsg,
    APIDeleteAccountEvent,
    APIDeleteAccountMsg,
    APILogInByAccountMsg,
    APILogInReply,
    APILogOutMsg,
    APILogOutReply,
    APIUpdateAccountEvent,
    APIUpdateAccountMsg,
    APIValidateSessionMsg,
    APIValidateSessionReply,
    ValidateSessionMsg,
    ValidateSessionReply,
)
from zstackpy.services.identity.passwords import Passwords
from zstackpy.services.identity.session_cache import ForgetSessionsMsg, SessionCache
from zstackpy.services.identity.store import (
    AccountChange,
    IdentityStore,
    account_inventory,
    session_inventory,
)
from zstackpy.services.identity.throttle import LoginThrottle, ThrottlePolicy

if TYPE_CHECKING:
    from zstackpy.core.context import NodeContext

log = logging.getLogger(__name__)

# Attempts on one account name run one at a time (see _log_in); past this many waiting, a
# burst on one name is refused at once.
LOGIN_MAX_PENDING = 64
# How long a logout waits for each other node to drop the session from its cache.
FORGET_TIMEOUT_S = 5.0


class IdentityService(Service):
    name = IDENTITY_SERVICE

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.store = IdentityStore(ctx.db)
        self.passwords = Passwords(ctx.queues)
        self.throttle = LoginThrottle()
        self.sessions = SessionCache()
        self._cleanup: asyncio.Task[None] | None = None
        self._wake_cleanup = asyncio.Event()
        self._unwatch: Callable[[], None] | None = None

    async def start(self) -> None:
        await ensure_admin(self.store, self.passwords, self.ctx.settings.admin_password)
        self._unwatch = self.ctx.configs.watch(
            SESSION_CLEANUP_INTERVAL.category,
            SESSION_CLEANUP_INTERVAL.name,
            self._on_cleanup_interval_changed,
        )
        self._cleanup = asyncio.create_task(self._cleanup_loop(), name="identity:cleanup")

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        task, self._cleanup = self._cleanup, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ----- sessions --------------------------------------------------------------------

    @handles(ValidateSessionMsg)
    async def validate_session(self, msg: ValidateSessionMsg) -> ValidateSessionReply:
        auth = self.sessions.get(msg.session_uuid)
        if auth is None:
            live = await self.store.live_session(msg.session_uuid)
            if live is not None:
                auth = live[0]
                self.sessions.put(*live)
        if auth is None:
            raise ZError(
                IdentityErr.INVALID_SESSION,
                "the session is invalid or has expired; log in again",
                session_uuid=msg.session_uuid,
            )
        return ValidateSessionReply(auth=auth)

    @handles(APILogInByAccountMsg)
    async def log_in(self, msg: APILogInByAccountMsg) -> APILogInReply:
        # One attempt per name at a time: otherwise a parallel burst would pass the
        # throttle's check before any of its failures were counted.
        return await self.ctx.queues.run(
            QueueKey("identity-login", msg.account_name),
            self._log_in,
            msg,
            max_pending=LOGIN_MAX_PENDING,
        )

    async def _log_in(self, msg: APILogInByAccountMsg) -> APILogInReply:
        name = msg.account_name
        loop = asyncio.get_running_loop()
        wait = self.throttle.retry_after(name, loop.time())
        if wait is not None:
            retry_after_s = math.ceil(wait)
            raise ZError(
                IdentityErr.TOO_MANY_FAILED_LOGINS,
                f"too many failed logins for this account name; try again in {retry_after_s} s",
                retry_after_s=retry_after_s,
            )
        account = await self.store.account_by_name(name)
        if account is None:
            await self.passwords.burn_verify(msg.password)
            ok = False
        else:
            ok = await self.passwords.verify(account.password_hash, msg.password)
        if account is None or not ok:
            policy = self._throttle_policy()
            if self.throttle.failed(name, loop.time(), policy):
                log.warning(
                    "account name %r refused for %d s after %d failed logins",
                    name,
                    policy.lock_s,
                    policy.max_failures,
                )
            # One text for both causes: the answer must not tell which names exist.
            raise ZError(IdentityErr.BAD_CREDENTIALS, "wrong account name or password")
        self.throttle.succeeded(name)
        if self.passwords.needs_rehash(account.password_hash):
            # The hasher's parameters were raised since this hash was made; the login is
            # the one moment the value to hash is known.
            await self.store.set_password_hash(
                account.uuid, await self.passwords.hash(msg.password)
            )
        timeout_s = self.ctx.configs.value(SESSION_TIMEOUT)
        session = await self.store.create_session(account.uuid, timeout_s)
        return APILogInReply(inventory=session_inventory(session))

    @handles(APILogOutMsg)
    async def log_out(self, msg: APILogOutMsg) -> APILogOutReply:
        target = msg.target_session_uuid or msg.session_uuid
        if target:
            await self.store.delete_session(target)
            await self._end_sessions(ForgetSessionsMsg(session_uuids=[target]))
        return APILogOutReply()

    @handles(APIValidateSessionMsg)
    async def validate_session_api(self, msg: APIValidateSessionMsg) -> APIValidateSessionReply:
        target = msg.target_session_uuid
        valid = bool(target) and await self.store.session_auth(target or "") is not None
        return APIValidateSessionReply(valid=valid)

    async def _end_sessions(self, msg: ForgetSessionsMsg) -> None:
        """Every node forgets the sessions before the caller hears back (session_cache)."""
        self.sessions.evict(msg)
        others = sorted(self.ctx.ring.nodes - {self.ctx.node_uuid})
        replies = await asyncio.gather(
            *(
                self.ctx.bus.call(msg.model_copy(), node=node, timeout=FORGET_TIMEOUT_S)
                for node in others
            )
        )
        for node, reply in zip(others, replies, strict=True):
            if not reply.success:
                # The rows are gone: that node refuses them once its entry is ttl_s old.
                log.warning("node %s did not forget ended sessions: %s", node, reply.error)

    @handles(ForgetSessionsMsg)
    async def forget_sessions(self, msg: ForgetSessionsMsg) -> Reply:
        self.sessions.evict(msg)
        return Reply()

    # ----- accounts --------------------------------------------------------------------

    @handles(APICreateAccountMsg)
    async def create_account(self, msg: APICreateAccountMsg) -> APICreateAccountEvent:
        _require_admin(msg)
        password_hash = await self.passwords.hash(msg.password)
        account = await self.store.insert_account(
            uuid=msg.resource_uuid or new_uuid(),
            name=msg.name,
            account_type=msg.type,
            password_hash=password_hash,
            description=msg.description,
        )
        log.info("account %s (%s, %s) created", account.uuid, account.name, account.type)
        return APICreateAccountEvent(inventory=account_inventory(account))

    @handles(APIUpdateAccountMsg)
    async def update_account(self, msg: APIUpdateAccountMsg) -> APIUpdateAccountEvent:
        return await self.ctx.queues.run(QueueKey("account", msg.uuid), self._update, msg)

    async def _update(self, msg: APIUpdateAccountMsg) -> APIUpdateAccountEvent:
        auth = msg.require_auth()
        if not auth.is_admin and auth.account_uuid != msg.uuid:
            raise ZError(
                IdentityErr.PERMISSION_DENIED,
                "a normal account may update itself only",
                uuid=msg.uuid,
            )
        account = await self.store.account(msg.uuid)
        if account is None:
            raise ZError(
                SysErr.RESOURCE_NOT_FOUND, f"no account with uuid {msg.uuid}", uuid=msg.uuid
            )
        if msg.old_password is not None and not await self.passwords.verify(
            account.password_hash, msg.old_password
        ):
            raise ZError(IdentityErr.BAD_CREDENTIALS, "the old password is wrong")
        new_hash = await self.passwords.hash(msg.password) if msg.password else None
        updated = await self.store.update_account(
            msg.uuid,
            AccountChange(name=msg.name, description=msg.description, password_hash=new_hash),
        )
        return APIUpdateAccountEvent(inventory=account_inventory(updated))

    @handles(APIDeleteAccountMsg)
    async def delete_account(self, msg: APIDeleteAccountMsg) -> APIDeleteAccountEvent:
        return await self.ctx.queues.run(QueueKey("account", msg.uuid), self._delete, msg)

    async def _delete(self, msg: APIDeleteAccountMsg) -> APIDeleteAccountEvent:
        auth = _require_admin(msg)
        account = await self.store.account(msg.uuid)
        if account is None:
            return APIDeleteAccountEvent()  # already gone: a retried delete succeeds
        if account.type == AccountType.SYSTEM_ADMIN or account.uuid == auth.account_uuid:
            raise ZError(
                IdentityErr.ACCOUNT_UNDELETABLE,
                f"account {account.name!r} is a SystemAdmin account and cannot be deleted",
                uuid=account.uuid,
            )
        await self.store.delete_account(account.uuid)
        await self._end_sessions(ForgetSessionsMsg(account_uuid=account.uuid))
        log.info("account %s (%s) deleted", account.uuid, account.name)
        return APIDeleteAccountEvent()

    # ----- background ------------------------------------------------------------------

    async def purge_expired_sessions(self) -> int:
        """Delete expired sessions now; returns how many. The cleanup task calls this."""
        count = await self.store.purge_expired_sessions()
        if count:
            log.info("purged %d expired sessions", count)
        return count

    async def _cleanup_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.purge_expired_sessions()
            except Exception:
                log.exception("purging expired sessions failed; trying again next interval")
            self.throttle.prune(loop.time(), self._throttle_policy())
            self._wake_cleanup.clear()
            interval = self.ctx.configs.value(SESSION_CLEANUP_INTERVAL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._wake_cleanup.wait()

    def _on_cleanup_interval_changed(self, old: object, new: object) -> None:
        # The loop may be sleeping out the old interval (an hour by default).
        self._wake_cleanup.set()

    def _throttle_policy(self) -> ThrottlePolicy:
        configs = self.ctx.configs
        return ThrottlePolicy(
            max_failures=configs.value(LOGIN_MAX_FAILURES),
            window_s=configs.value(LOGIN_FAILURE_WINDOW),
            lock_s=configs.value(LOGIN_LOCK_DURATION),
        )


def _require_admin(msg: APIMessage) -> AuthContext:
    auth = msg.require_auth()
    if not auth.is_admin:
        spec = msg.api
        name = spec.name if spec is not None else msg.wire_type()
        raise ZError(IdentityErr.PERMISSION_DENIED, f"{name} is for the admin account only")
    return auth
