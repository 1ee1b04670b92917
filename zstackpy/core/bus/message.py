"""Messages, replies and events: pydantic models whose class name is their wire type.

Every concrete message class registers itself by name when it is defined, so a receiver can
decode a message from its type name and JSON body. Add fields with defaults so that older
senders still validate; unknown fields are ignored for the same reason.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from zstackpy.core.errors import ErrorInfo, SysErr, ZError

_REGISTRY: dict[str, type[Message]] = {}


class Message(BaseModel):
    """Base of everything that travels on the bus.

    ``service`` is the destination service id; ``route_by`` names the field holding the UUID
    of the resource the message is about, which the ring turns into the owner node.
    """

    model_config = ConfigDict(extra="ignore", frozen=False)

    service: ClassVar[str] = ""
    route_by: ClassVar[str | None] = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        existing = _REGISTRY.get(cls.__name__)
        # Re-defining the same class (module reload) is fine; two classes sharing a wire
        # name would make decoding ambiguous.
        if existing is not None and (existing.__module__, existing.__qualname__) != (
            cls.__module__,
            cls.__qualname__,
        ):
            raise TypeError(
                f"message type name {cls.__name__!r} is defined in both {existing.__module__} "
                f"and {cls.__module__}; wire type names must be unique"
            )
        _REGISTRY[cls.__name__] = cls

    @classmethod
    def wire_type(cls) -> str:
        return cls.__name__

    def routing_uuid(self) -> str | None:
        """The UUID the ring routes this message by (the ``route_by`` field), if any."""
        if self.route_by is None:
            return None
        value = getattr(self, self.route_by, None)
        return value if isinstance(value, str) and value else None


class NeedReplyMessage(Message):
    """A message whose sender waits for a Reply."""


class Reply(Message):
    """The answer to a NeedReplyMessage: success, or a structured error."""

    success: bool = True
    error: ErrorInfo | None = None

    @classmethod
    def failure(cls, error: ErrorInfo) -> Reply:
        return Reply(success=False, error=error)

    def raise_if_error(self) -> None:
        if not self.success:
            info = self.error or ErrorInfo(code=SysErr.INTERNAL, description="failed reply")
            raise ZError.from_info(info)


class Event(Message):
    """Published to every subscriber on every node."""


class DecodeError(Exception):
    """A message body that cannot become a Message: bad JSON, unknown type, failed validation."""

    def __init__(self, reason: str, type_name: str) -> None:
        super().__init__(f"cannot decode message of type {type_name!r}: {reason}")
        self.reason = reason
        self.type_name = type_name


M = TypeVar("M", bound=Message)


def lookup(type_name: str) -> type[Message] | None:
    return _REGISTRY.get(type_name)


def encode(msg: Message) -> bytes:
    return msg.__pydantic_serializer__.to_json(msg)


def decode(type_name: str, body: bytes) -> Message:
    cls = _REGISTRY.get(type_name)
    if cls is None:
        raise DecodeError("unknown message type", type_name)
    try:
        return cls.model_validate_json(body)
    except ValidationError as exc:
        raise DecodeError(
            f"invalid body ({exc.error_count()} errors: {exc.errors()[0]['msg']})", type_name
        ) from exc
