"""The error replies the bus itself gives: no route, not running, node gone, undeliverable,
timeout. Each names the message type and where it was going, so a caller can tell them apart
by code and an operator by details."""

from __future__ import annotations

from zstackpy.core.bus.message import Message
from zstackpy.core.errors import ErrorInfo, SysErr


def no_service(msg: Message, service: str | None = None) -> ErrorInfo:
    return ErrorInfo(
        code=SysErr.NO_ROUTE,
        description=f"no service {service or msg.service!r} for {msg.wire_type()}",
        details={"message": msg.wire_type(), "service": service or msg.service},
    )


def not_serving(msg: Message) -> ErrorInfo:
    return ErrorInfo(
        code=SysErr.NOT_READY,
        description=f"the bus is not running: {msg.wire_type()} was not sent",
        details={"message": msg.wire_type()},
    )


def node_unavailable(msg: Message, dest: str) -> ErrorInfo:
    return ErrorInfo(
        code=SysErr.MANAGEMENT_NODE_UNAVAILABLE,
        description=f"management node {dest} is not in the ring",
        details={"node": dest, "message": msg.wire_type()},
    )


def turned_away(type_name: str, node: str, reason: str) -> ErrorInfo:
    return ErrorInfo(
        code=SysErr.MANAGEMENT_NODE_UNAVAILABLE,
        description=f"management node {node} takes no more messages from other nodes: {reason}",
        details={"node": node, "message": type_name},
    )


def cut_off_by_drain(type_name: str, node: str, reason: str) -> ErrorInfo:
    return ErrorInfo(
        code=SysErr.MANAGEMENT_NODE_UNAVAILABLE,
        description=f"management node {node} stopped handling {type_name} before it ended "
        f"({reason}): its outcome is unknown; the new owner of its resource settles it",
        details={"node": node, "message": type_name, "reason": "drained"},
    )


def undeliverable(msg: Message, service: str, dest: str | None, exc: Exception) -> ErrorInfo:
    return ErrorInfo(
        code=SysErr.UNDELIVERABLE,
        description=f"{msg.wire_type()} could not be delivered to {service}: {exc}",
        details={"node": dest, "service": service, "message": msg.wire_type()},
    )


def timed_out(msg: Message, dest: str | None, timeout: float) -> ErrorInfo:
    return ErrorInfo(
        code=SysErr.TIMEOUT,
        description=f"no reply to {msg.wire_type()} within {timeout}s",
        details={"message": msg.wire_type(), "node": dest, "timeout_s": timeout},
    )


def node_left_before_reply(node_uuid: str, type_name: str) -> ErrorInfo:
    return ErrorInfo(
        code=SysErr.MANAGEMENT_NODE_UNAVAILABLE,
        description=f"management node {node_uuid} left the ring before answering {type_name}",
        details={"node": node_uuid, "message": type_name},
    )


def connection_lost_before_reply(type_name: str) -> ErrorInfo:
    return ErrorInfo(
        code=SysErr.UNDELIVERABLE,
        description=f"the connection to the message broker was lost while {type_name} was "
        "in flight: its request or its reply may be gone, its outcome is unknown",
        details={"message": type_name},
    )
