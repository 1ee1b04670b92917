"""Identity over the bus: API messages go to the portal, which checks sessions and forwards
them to the identity service, as the HTTP front-ends do."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from tests.support.mariadb import fresh_mariadb
from zstackpy.api.messages import APIMessage, APIQueryReply
from zstackpy.core.bus.inproc import InProcBroker
from zstackpy.core.bus.message import Reply
from zstackpy.core.config.messages import UpdateGlobalConfigMsg
from zstackpy.core.db import ResourceVO, upgrade
from zstackpy.core.errors import SysErr
from zstackpy.core.settings import NodeSettings
from zstackpy.node.node import ManagementNode
from zstackpy.services.identity.bootstrap import ANNOUNCE_PREFIX
from zstackpy.services.identity.errors import IdentityErr
from zstackpy.services.identity.messages import (
    AccountInventory,
    APICreateAccountEvent,
    APICreateAccountMsg,
    APIDeleteAccountMsg,
    APILogInByAccountMsg,
    APILogInReply,
    APILogOutMsg,
    APIQueryAccountMsg,
    APIUpdateAccountEvent,
    APIUpdateAccountMsg,
    APIValidateSessionMsg,
    APIValidateSessionReply,
    SessionInventory,
    ValidateSessionMsg,
    ValidateSessionReply,
)
from zstackpy.services.identity.models import AccountVO, SessionVO
from zstackpy.services.identity.passwords import sha512_hex
from zstackpy.services.identity.service import IdentityService

ADMIN_PW = "correct horse battery staple"
R = TypeVar("R", bound=Reply)
Start = Callable[..., Awaitable[ManagementNode]]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NodeSettings:
    # The developer's own environment must not choose the admin password for a test.
    monkeypatch.delenv("ZSTACK_ADMIN_PASSWORD", raising=False)
    return NodeSettings(
        data_dir=tmp_path,
        db_url=f"sqlite+aiosqlite:///{tmp_path / 'zstack.db'}",
        http_port=0,
        bus_url=None,
        plugins=[],
    )


async def _cluster(settings: NodeSettings) -> AsyncIterator[Start]:
    """Nodes on one database and one in-process broker; stopped on the way out."""
    await upgrade(settings.database_url)
    broker = InProcBroker()
    nodes: list[ManagementNode] = []

    async def start(**overrides: Any) -> ManagementNode:
        node = ManagementNode(
            settings.model_copy(update=overrides), broker=broker, serve_http=False
        )
        await node.start()
        nodes.append(node)
        return node

    yield start
    for node in reversed(nodes):
        if node.state.value in ("ready", "draining", "fenced"):
            await node.stop()


@pytest.fixture
async def start(settings: NodeSettings) -> AsyncIterator[Start]:
    async for factory in _cluster(settings):
        yield factory


@pytest.fixture
async def node(start: Start) -> ManagementNode:
    return await start(admin_password=SecretStr(ADMIN_PW))


# ----- helpers ---------------------------------------------------------------------------


async def call(node: ManagementNode, msg: APIMessage, session: str | None = None) -> Reply:
    msg.session_uuid = session
    return await node.context.bus.call(msg)


async def ok(node: ManagementNode, msg: APIMessage, reply_type: type[R], **kw: Any) -> R:
    reply = await call(node, msg, **kw)
    reply.raise_if_error()
    assert isinstance(reply, reply_type)
    return reply


async def fails(node: ManagementNode, msg: APIMessage, code: str, **kw: Any) -> Reply:
    reply = await call(node, msg, **kw)
    assert not reply.success
    assert reply.error is not None
    assert reply.error.code == code, reply.error
    return reply


async def login(node: ManagementNode, name: str, plain: str) -> SessionInventory:
    msg = APILogInByAccountMsg(account_name=name, password=sha512_hex(plain))
    return (await ok(node, msg, APILogInReply)).inventory


async def create_account(
    node: ManagementNode, admin: str, name: str, plain: str
) -> AccountInventory:
    msg = APICreateAccountMsg(name=name, password=sha512_hex(plain))
    return (await ok(node, msg, APICreateAccountEvent, session=admin)).inventory


async def set_config(node: ManagementNode, name: str, value: str) -> None:
    msg = UpdateGlobalConfigMsg(category="identity", name=name, value=value)
    (await node.context.bus.call(msg)).raise_if_error()


async def is_valid(node: ManagementNode, session: str) -> bool:
    msg = APIValidateSessionMsg(target_session_uuid=session)
    return (await ok(node, msg, APIValidateSessionReply)).valid


async def session_rows(node: ManagementNode) -> list[SessionVO]:
    async with node.context.db.session() as s:
        return list((await s.execute(select(SessionVO))).scalars())


async def account_row(node: ManagementNode, name: str) -> AccountVO:
    async with node.context.db.session() as s:
        return (await s.execute(select(AccountVO).where(AccountVO.name == name))).scalar_one()


# ----- admin bootstrap -------------------------------------------------------------------


async def test_admin_password_from_settings_logs_in(
    node: ManagementNode, capsys: pytest.CaptureFixture[str]
) -> None:
    session = await login(node, "admin", ADMIN_PW)
    admin = await account_row(node, "admin")
    assert admin.type == "SystemAdmin"
    assert session.account_uuid == admin.uuid
    assert session.expired_date - session.create_date == timedelta(seconds=7200)
    auth = (
        await node.context.bus.request(
            ValidateSessionMsg(session_uuid=session.uuid), ValidateSessionReply
        )
    ).auth
    assert auth.account_uuid == admin.uuid
    assert auth.is_admin
    assert await is_valid(node, session.uuid)
    # A password given by the operator is never printed.
    assert ANNOUNCE_PREFIX not in capsys.readouterr().out
    # The admin owns itself, like every account.
    async with node.context.db.session() as s:
        owner = await s.get(ResourceVO, admin.uuid)
    assert owner is not None
    assert (owner.resource_type, owner.account_uuid) == ("AccountVO", admin.uuid)


async def test_stored_hash_is_argon2_of_the_digest_not_the_digest(node: ManagementNode) -> None:
    admin = await account_row(node, "admin")
    digest = sha512_hex(ADMIN_PW)
    assert admin.password_hash.startswith("$argon2id$")
    assert admin.password_hash != digest
    assert digest not in admin.password_hash
    assert ADMIN_PW not in admin.password_hash


async def test_wrong_credentials_answer_alike_and_store_nothing(node: ManagementNode) -> None:
    wrong_pw = await fails(
        node,
        APILogInByAccountMsg(account_name="admin", password=sha512_hex("nope")),
        IdentityErr.BAD_CREDENTIALS,
    )
    wrong_name = await fails(
        node,
        APILogInByAccountMsg(account_name="nobody", password=sha512_hex(ADMIN_PW)),
        IdentityErr.BAD_CREDENTIALS,
    )
    assert wrong_pw.error is not None
    assert wrong_name.error is not None
    assert wrong_pw.error.description == wrong_name.error.description
    assert wrong_pw.error.details == wrong_name.error.details == {}
    assert await session_rows(node) == []


async def test_generated_password_is_printed_once_and_only_at_first_start(
    start: Start,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    first = await start()
    lines = [line for line in capsys.readouterr().out.splitlines() if ANNOUNCE_PREFIX in line]
    assert len(lines) == 1
    password = lines[0].split(ANNOUNCE_PREFIX, 1)[1].strip()
    assert len(password) >= 24
    assert password not in caplog.text
    assert "generated password" in caplog.text
    await login(first, "admin", password)
    await first.stop()

    again = await start()
    assert ANNOUNCE_PREFIX not in capsys.readouterr().out
    await login(again, "admin", password)


async def test_nodes_starting_together_create_one_admin(
    start: Start, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = await asyncio.gather(start(), start())
    printed = [line for line in capsys.readouterr().out.splitlines() if ANNOUNCE_PREFIX in line]
    assert len(printed) == 1
    async with a.context.db.session() as s:
        admins = (await s.execute(select(AccountVO).where(AccountVO.type == "SystemAdmin"))).all()
    assert len(admins) == 1
    password = printed[0].split(ANNOUNCE_PREFIX, 1)[1].strip()
    await login(b, "admin", password)


# ----- failed logins ---------------------------------------------------------------------


async def test_failed_logins_lock_the_name_across_the_cluster(start: Start) -> None:
    a = await start(admin_password=SecretStr(ADMIN_PW))
    b = await start()
    await set_config(a, "login.failure.max", "3")
    bad = APILogInByAccountMsg(account_name="admin", password=sha512_hex("guess"))
    # Attempts through either node meet at the ring owner of the name.
    for entry in (a, b, a):
        await fails(entry, bad.model_copy(), IdentityErr.BAD_CREDENTIALS)
    locked = await fails(
        b,
        APILogInByAccountMsg(account_name="admin", password=sha512_hex(ADMIN_PW)),
        IdentityErr.TOO_MANY_FAILED_LOGINS,
    )
    assert locked.error is not None
    assert 0 < locked.error.details["retry_after_s"] <= 60
    assert await session_rows(a) == []
    # Another name is not locked.
    await fails(
        a,
        APILogInByAccountMsg(account_name="someone", password=sha512_hex("x")),
        IdentityErr.BAD_CREDENTIALS,
    )


async def test_lock_ends_after_its_duration(node: ManagementNode) -> None:
    await set_config(node, "login.failure.max", "1")
    await set_config(node, "login.lock.duration", "1")
    await fails(
        node,
        APILogInByAccountMsg(account_name="admin", password=sha512_hex("guess")),
        IdentityErr.BAD_CREDENTIALS,
    )
    await fails(
        node,
        APILogInByAccountMsg(account_name="admin", password=sha512_hex(ADMIN_PW)),
        IdentityErr.TOO_MANY_FAILED_LOGINS,
    )
    await asyncio.sleep(1.05)
    await login(node, "admin", ADMIN_PW)


# ----- sessions --------------------------------------------------------------------------


async def test_session_timeout_config_and_expiry(node: ManagementNode) -> None:
    await set_config(node, "session.timeout", "30")
    session = await login(node, "admin", ADMIN_PW)
    assert session.expired_date - session.create_date == timedelta(seconds=30)
    assert await is_valid(node, session.uuid)
    # Time passes: the row's expiry moves into the past.
    async with node.context.db.session() as s, s.begin():
        await s.execute(
            update(SessionVO)
            .where(SessionVO.uuid == session.uuid)
            .values(expired_date=session.create_date - timedelta(seconds=1))
        )
    assert not await is_valid(node, session.uuid)
    await fails(
        node,
        APICreateAccountMsg(name="x", password=sha512_hex("x")),
        IdentityErr.INVALID_SESSION,
        session=session.uuid,
    )
    # A shorter cleanup interval wakes the cleanup task, which purges the expired row.
    await set_config(node, "session.cleanup.interval", "0.1")
    async with asyncio.timeout(5):
        while await session_rows(node):
            await asyncio.sleep(0.05)


async def test_logout_ends_the_session(node: ManagementNode) -> None:
    one = await login(node, "admin", ADMIN_PW)
    two = await login(node, "admin", ADMIN_PW)
    await ok(node, APILogOutMsg(target_session_uuid=one.uuid), Reply)
    assert not await is_valid(node, one.uuid)
    assert await is_valid(node, two.uuid)
    # Without a session in the path, LogOut ends the caller's own session.
    await ok(node, APILogOutMsg(), Reply, session=two.uuid)
    assert not await is_valid(node, two.uuid)
    # Ending a session that is gone succeeds.
    await ok(node, APILogOutMsg(target_session_uuid=one.uuid), Reply)
    assert await session_rows(node) == []


async def test_apis_needing_a_session_refuse_none_and_unknown(node: ManagementNode) -> None:
    msg = APICreateAccountMsg(name="x", password=sha512_hex("x"))
    await fails(node, msg, IdentityErr.MISSING_SESSION)
    await fails(node, msg.model_copy(), IdentityErr.INVALID_SESSION, session="f" * 32)
    assert not await is_valid(node, "f" * 32)


# ----- accounts --------------------------------------------------------------------------


async def test_admin_creates_a_normal_account_that_logs_in(node: ManagementNode) -> None:
    admin = await login(node, "admin", ADMIN_PW)
    bob = await create_account(node, admin.uuid, "bob", "bob-pw")
    assert (bob.name, bob.type) == ("bob", "Normal")
    assert bob.create_date is not None
    session = await login(node, "bob", "bob-pw")
    assert session.account_uuid == bob.uuid
    auth = (
        await node.context.bus.request(
            ValidateSessionMsg(session_uuid=session.uuid), ValidateSessionReply
        )
    ).auth
    assert not auth.is_admin
    row = await account_row(node, "bob")
    assert row.password_hash.startswith("$argon2id$")
    assert row.password_hash != sha512_hex("bob-pw")
    async with node.context.db.session() as s:
        owner = await s.get(ResourceVO, bob.uuid)
    assert owner is not None
    assert (owner.resource_type, owner.resource_name, owner.account_uuid) == (
        "AccountVO",
        "bob",
        bob.uuid,
    )
    # Normal accounts may not create accounts: the portal refuses admin-only APIs.
    await fails(
        node,
        APICreateAccountMsg(name="eve", password=sha512_hex("x")),
        IdentityErr.PERMISSION_DENIED,
        session=session.uuid,
    )


async def test_duplicate_account_name_is_refused(node: ManagementNode) -> None:
    admin = await login(node, "admin", ADMIN_PW)
    await create_account(node, admin.uuid, "bob", "one")
    dup = await fails(
        node,
        APICreateAccountMsg(name="bob", password=sha512_hex("two")),
        IdentityErr.ACCOUNT_NAME_TAKEN,
        session=admin.uuid,
    )
    assert dup.error is not None
    assert dup.error.details == {"name": "bob"}
    await login(node, "bob", "one")


async def test_update_account(node: ManagementNode) -> None:
    admin = await login(node, "admin", ADMIN_PW)
    bob = await create_account(node, admin.uuid, "bob", "bob-pw")
    carol = await create_account(node, admin.uuid, "carol", "carol-pw")
    bob_session = await login(node, "bob", "bob-pw")
    # Bob changes his own password (proving the old one) and description.
    change = APIUpdateAccountMsg(
        uuid=bob.uuid,
        password=sha512_hex("new-pw"),
        old_password=sha512_hex("bob-pw"),
        description="mine",
    )
    updated = (await ok(node, change, APIUpdateAccountEvent, session=bob_session.uuid)).inventory
    assert updated.description == "mine"
    await login(node, "bob", "new-pw")
    await fails(
        node,
        APILogInByAccountMsg(account_name="bob", password=sha512_hex("bob-pw")),
        IdentityErr.BAD_CREDENTIALS,
    )
    # A wrong old password changes nothing.
    await fails(
        node,
        APIUpdateAccountMsg(
            uuid=bob.uuid, password=sha512_hex("x"), old_password=sha512_hex("wrong")
        ),
        IdentityErr.BAD_CREDENTIALS,
        session=bob_session.uuid,
    )
    await login(node, "bob", "new-pw")
    # Carol is another account's resource: to Bob it does not exist.
    await fails(
        node,
        APIUpdateAccountMsg(uuid=carol.uuid, description="hacked"),
        SysErr.RESOURCE_NOT_FOUND,
        session=bob_session.uuid,
    )
    # The admin may rename anyone; a taken name is refused.
    renamed = APIUpdateAccountMsg(uuid=carol.uuid, name="caroline")
    assert (
        await ok(node, renamed, APIUpdateAccountEvent, session=admin.uuid)
    ).inventory.name == "caroline"
    await fails(
        node,
        APIUpdateAccountMsg(uuid=carol.uuid, name="bob"),
        IdentityErr.ACCOUNT_NAME_TAKEN,
        session=admin.uuid,
    )
    await login(node, "caroline", "carol-pw")


async def test_delete_account(node: ManagementNode) -> None:
    admin = await login(node, "admin", ADMIN_PW)
    bob = await create_account(node, admin.uuid, "bob", "bob-pw")
    bob_session = await login(node, "bob", "bob-pw")
    await fails(
        node,
        APIDeleteAccountMsg(uuid=bob.uuid),
        IdentityErr.PERMISSION_DENIED,
        session=bob_session.uuid,
    )
    await fails(
        node,
        APIDeleteAccountMsg(uuid=admin.account_uuid),
        IdentityErr.ACCOUNT_UNDELETABLE,
        session=admin.uuid,
    )
    await ok(node, APIDeleteAccountMsg(uuid=bob.uuid), Reply, session=admin.uuid)
    assert not await is_valid(node, bob_session.uuid)
    await fails(
        node,
        APILogInByAccountMsg(account_name="bob", password=sha512_hex("bob-pw")),
        IdentityErr.BAD_CREDENTIALS,
    )
    async with node.context.db.session() as s:
        assert await s.get(ResourceVO, bob.uuid) is None
    # Deleting again succeeds: the account is gone either way.
    await ok(node, APIDeleteAccountMsg(uuid=bob.uuid), Reply, session=admin.uuid)


async def test_query_accounts(node: ManagementNode) -> None:
    admin = await login(node, "admin", ADMIN_PW)
    bob = await create_account(node, admin.uuid, "bob", "bob-pw")
    everyone = await ok(node, APIQueryAccountMsg(), APIQueryReply, session=admin.uuid)
    assert everyone.inventories is not None
    assert {inv["name"] for inv in everyone.inventories} == {"admin", "bob"}
    assert all("passwordHash" not in inv for inv in everyone.inventories)
    bob_session = await login(node, "bob", "bob-pw")
    own = await ok(node, APIQueryAccountMsg(), APIQueryReply, session=bob_session.uuid)
    assert own.inventories is not None
    assert [inv["uuid"] for inv in own.inventories] == [bob.uuid]


async def test_service_stops_its_cleanup_task(node: ManagementNode) -> None:
    service = node.services[IdentityService]
    assert isinstance(service, IdentityService)
    task = service._cleanup
    assert task is not None
    assert not task.done()
    await node.stop()
    assert task.done()


# ----- MariaDB ---------------------------------------------------------------------------


@pytest.mark.real_server
async def test_login_on_mariadb(settings: NodeSettings) -> None:
    async with fresh_mariadb() as url:
        async for start in _cluster(settings.model_copy(update={"db_url": url})):
            node = await start(admin_password=SecretStr(ADMIN_PW))
            await fails(
                node,
                APILogInByAccountMsg(account_name="admin", password=sha512_hex("no")),
                IdentityErr.BAD_CREDENTIALS,
            )
            # MariaDB compares names without case; a login must still name exactly.
            await fails(
                node,
                APILogInByAccountMsg(account_name="ADMIN", password=sha512_hex(ADMIN_PW)),
                IdentityErr.BAD_CREDENTIALS,
            )
            session = await login(node, "admin", ADMIN_PW)
            assert session.expired_date - session.create_date == timedelta(seconds=7200)
            assert await is_valid(node, session.uuid)
            admin = await login(node, "admin", ADMIN_PW)
            bob = await create_account(node, admin.uuid, "bob", "bob-pw")
            await login(node, "bob", "bob-pw")
            await ok(node, APIDeleteAccountMsg(uuid=bob.uuid), Reply, session=admin.uuid)
            await ok(node, APILogOutMsg(target_session_uuid=session.uuid), Reply)
            assert not await is_valid(node, session.uuid)
