"""The identity service's contract: its internal message, the identity API messages, their
replies and the Session and Account inventories.

Passwords travel as the SHA-512 hex digest of the plain text, as ZStack clients send them;
``repr=False`` keeps them out of every repr and log line that shows a message.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import Field

from zstackpy.api.messages import (
    APICreateMessage,
    APIMessage,
    APIQueryMessage,
    APIReply,
    ApiSpec,
    AuthContext,
    Inventory,
)
from zstackpy.core.bus.message import NeedReplyMessage, Reply

IDENTITY_SERVICE = "identity"

_JAVA = "org.zstack.header.identity"

# Long enough for any digest a client may send (SHA-512 hex is 128); bounded because argon2
# hashes whatever it gets, and a megabyte "password" would be a cheap way to burn CPU.
PASSWORD_MAX_LENGTH = 512


# LogOut and ValidateSession are about the session named by ZStack's ``sessionUuid`` (path
# variable and RPC field), which is not the caller's own: the inherited field for the
# caller's session moves to another wire name, so the front-ends, which never let clients
# set the caller's session, leave ``sessionUuid`` to the API.
CALLER_SESSION_ALIAS = "callerSessionUuid"


class AccountType(StrEnum):
    SYSTEM_ADMIN = "SystemAdmin"
    NORMAL = "Normal"


# ----- internal --------------------------------------------------------------------------


class ValidateSessionMsg(NeedReplyMessage):
    """Sent by the API portal for every API message that needs a session. Answers the
    caller's AuthContext, or an ID.1001 error for an unknown or expired session."""

    service: ClassVar[str] = IDENTITY_SERVICE
    session_uuid: str


class ValidateSessionReply(Reply):
    auth: AuthContext


# ----- inventories -----------------------------------------------------------------------


class SessionInventory(Inventory):
    uuid: str
    account_uuid: str
    user_uuid: str | None = None
    user_type: str | None = None
    expired_date: datetime
    create_date: datetime


class AccountInventory(Inventory):
    uuid: str
    name: str
    description: str | None = None
    type: str
    create_date: datetime | None = None
    last_op_date: datetime | None = None


# ----- sessions --------------------------------------------------------------------------


class APILogInByAccountMsg(APIMessage):
    """Log in; answers a new session. Routed by account name, so every attempt on one name
    meets the same node's failed-login counter."""

    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="LogInByAccount",
        java_class=f"{_JAVA}.APILogInByAccountMsg",
        method="PUT",
        path="/accounts/login",
        body_key="logInByAccount",
        is_async=False,
        result_java_class=f"{_JAVA}.APILogInReply",
        needs_session=False,
        summary="Log in with an account name and the SHA-512 hex digest of its password",
    )
    api_service: ClassVar[str] = IDENTITY_SERVICE
    route_by: ClassVar[str | None] = "account_name"

    account_name: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH, repr=False)
    account_type: str | None = None  # accepted for ZStack clients; accounts are one kind here
    captcha_uuid: str | None = None
    verify_code: str | None = Field(None, repr=False)
    client_info: dict[str, Any] | None = None


class APILogInReply(APIReply):
    inventory: SessionInventory


class APILogOutMsg(APIMessage):
    """End the session ``target_session_uuid`` (the path's ``{sessionUuid}``), or the
    caller's own when it is not given. Ending an unknown or expired session succeeds: the
    caller's goal, no such session, holds."""

    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="LogOut",
        java_class=f"{_JAVA}.APILogOutMsg",
        method="DELETE",
        path="/accounts/sessions/{sessionUuid}",
        is_async=False,
        result_java_class=f"{_JAVA}.APILogOutReply",
        needs_session=False,
        summary="End a session",
    )
    api_service: ClassVar[str] = IDENTITY_SERVICE

    session_uuid: str | None = Field(None, alias=CALLER_SESSION_ALIAS)
    target_session_uuid: str | None = Field(None, alias="sessionUuid")  # None: the caller's
    client_info: dict[str, Any] | None = None


class APILogOutReply(APIReply):
    pass


class APIValidateSessionMsg(APIMessage):
    """Is ``target_session_uuid`` (the path's ``{sessionUuid}``) a live session?"""

    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="ValidateSession",
        java_class=f"{_JAVA}.APIValidateSessionMsg",
        method="GET",
        path="/accounts/sessions/{sessionUuid}/valid",
        is_async=False,
        result_java_class=f"{_JAVA}.APIValidateSessionReply",
        needs_session=False,
        summary="Tell whether a session is valid",
    )
    api_service: ClassVar[str] = IDENTITY_SERVICE

    session_uuid: str | None = Field(None, alias=CALLER_SESSION_ALIAS)
    target_session_uuid: str | None = Field(None, alias="sessionUuid")


class APIValidateSessionReply(APIReply):
    valid: bool


# ----- accounts --------------------------------------------------------------------------


class APICreateAccountMsg(APICreateMessage):
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="CreateAccount",
        java_class=f"{_JAVA}.APICreateAccountMsg",
        method="POST",
        path="/accounts",
        body_key="params",
        is_async=True,
        result_java_class=f"{_JAVA}.APICreateAccountEvent",
        admin_only=True,
        creates="AccountVO",
        summary="Create an account",
    )
    api_service: ClassVar[str] = IDENTITY_SERVICE

    name: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH, repr=False)
    type: AccountType = AccountType.NORMAL
    description: str | None = Field(None, max_length=2048)


class APICreateAccountEvent(APIReply):
    inventory: AccountInventory


class APIUpdateAccountMsg(APIMessage):
    """Change an account's name, description or password. A normal account may change
    itself only; the admin any account. ``old_password``, when given, must be the current
    password."""

    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="UpdateAccount",
        java_class=f"{_JAVA}.APIUpdateAccountMsg",
        method="PUT",
        path="/accounts/{uuid}",
        body_key="updateAccount",
        is_async=True,
        result_java_class=f"{_JAVA}.APIUpdateAccountEvent",
        summary="Update an account",
    )
    api_service: ClassVar[str] = IDENTITY_SERVICE
    route_by: ClassVar[str | None] = "uuid"

    uuid: str
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=2048)
    password: str | None = Field(None, min_length=1, max_length=PASSWORD_MAX_LENGTH, repr=False)
    old_password: str | None = Field(None, max_length=PASSWORD_MAX_LENGTH, repr=False)


class APIUpdateAccountEvent(APIReply):
    inventory: AccountInventory


class APIDeleteAccountMsg(APIMessage):
    """Delete a Normal account and end its sessions; SystemAdmin accounts stay."""

    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="DeleteAccount",
        java_class=f"{_JAVA}.APIDeleteAccountMsg",
        method="DELETE",
        path="/accounts/{uuid}",
        is_async=True,
        result_java_class=f"{_JAVA}.APIDeleteAccountEvent",
        admin_only=True,
        summary="Delete an account",
    )
    api_service: ClassVar[str] = IDENTITY_SERVICE
    route_by: ClassVar[str | None] = "uuid"

    uuid: str
    delete_mode: Literal["Permissive", "Enforcing"] = "Permissive"


class APIDeleteAccountEvent(APIReply):
    pass


class APIQueryAccountMsg(APIQueryMessage):
    """Query accounts; the generic ``query`` service answers. A normal account sees itself."""

    query_of: ClassVar[str] = "Account"
    api: ClassVar[ApiSpec | None] = ApiSpec(
        name="QueryAccount",
        java_class=f"{_JAVA}.APIQueryAccountMsg",
        method="GET",
        path="/accounts",
        is_async=False,
        result_java_class=f"{_JAVA}.APIQueryAccountReply",
        summary="Query accounts",
    )
