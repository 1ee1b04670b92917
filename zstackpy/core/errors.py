"""Structured errors: stable codes that cross the bus and HTTP as ``ErrorInfo``.

Callers branch on ``code``, never on text. Codes are listed in docs/errors.md.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class SysErr(StrEnum):
    """ZStack's system codes (SysErrors); the numbers are part of the wire contract."""

    INTERNAL = "SYS.1000"
    TIMEOUT = "SYS.1001"
    CREATE_RESOURCE = "SYS.1002"
    RESOURCE_NOT_FOUND = "SYS.1003"
    DELETE_RESOURCE = "SYS.1004"
    CHANGE_STATE = "SYS.1005"
    OPERATION = "SYS.1006"
    INVALID_ARGUMENT = "SYS.1007"
    UNKNOWN_MESSAGE = "SYS.1008"
    NO_ROUTE = "SYS.1009"
    NOT_READY = "SYS.1010"
    UNDELIVERABLE = "SYS.1011"
    MANAGEMENT_NODE_UNAVAILABLE = "SYS.1012"
    NO_CAPABILITY = "SYS.1013"
    UNIMPLEMENTED = "SYS.1014"
    HTTP = "SYS.1015"
    IO = "SYS.1016"
    CANCELED = "SYS.1017"


class KernelErr(StrEnum):
    """Codes of the kernel's own domains (our additions, same form as ZStack's)."""

    QUEUE_FULL = "QUEUE.1001"
    QUEUE_CANCELED = "QUEUE.1002"
    FLOW_DEFINITION = "FLOW.1001"
    FLOW_FAILED = "FLOW.1002"
    PLUGIN_LOAD = "PLUGIN.1001"
    PLUGIN_CONTRACT = "PLUGIN.1002"
    CONFIG_INVALID_VALUE = "CONFIG.1001"
    CONFIG_NOT_FOUND = "CONFIG.1002"
    DB_SCHEMA_NOT_AT_HEAD = "DB.1001"
    NODE_FENCED = "NODE.1001"


ErrorCode = SysErr | KernelErr | str


class ErrorInfo(BaseModel):
    """The wire form of an error: ZStack's ``{code, description, details, cause}``."""

    code: str
    description: str
    details: dict[str, Any] = Field(default_factory=dict)
    cause: ErrorInfo | None = None


class ZError(Exception):
    """An expected failure; crosses the bus and HTTP as ErrorInfo."""

    def __init__(
        self,
        code: ErrorCode,
        description: str,
        *,
        cause: ErrorInfo | None = None,
        **details: Any,
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.code = str(code)
        self.description = description
        self.details: dict[str, Any] = details
        self.cause = cause
        # The flow trace of the chain run that failed, when a flow chain raised it.
        self.trace: Any = None

    def info(self) -> ErrorInfo:
        return ErrorInfo(
            code=self.code, description=self.description, details=self.details, cause=self.cause
        )

    @classmethod
    def from_info(cls, info: ErrorInfo) -> ZError:
        return cls(info.code, info.description, cause=info.cause, **info.details)


def error_info_of(exc: BaseException) -> ErrorInfo:
    """Turn any exception into ErrorInfo; unexpected ones become SYS.1000 with their type."""
    if isinstance(exc, ZError):
        return exc.info()
    return ErrorInfo(
        code=SysErr.INTERNAL,
        description="internal error",
        details={"exception": type(exc).__name__, "message": str(exc)},
    )
