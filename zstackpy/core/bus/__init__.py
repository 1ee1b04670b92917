"""CloudBus and its transports."""

from zstackpy.core.bus.bus import BusStats, CloudBus
from zstackpy.core.bus.message import (
    DecodeError,
    Event,
    Message,
    NeedReplyMessage,
    Reply,
    decode,
    encode,
)
from zstackpy.core.bus.observer import HandleObserver
from zstackpy.core.bus.transport import API_PORTAL, Envelope, Kind, Transport, Undeliverable

__all__ = [
    "API_PORTAL",
    "BusStats",
    "CloudBus",
    "DecodeError",
    "Envelope",
    "Event",
    "HandleObserver",
    "Kind",
    "Message",
    "NeedReplyMessage",
    "Reply",
    "Transport",
    "Undeliverable",
    "decode",
    "encode",
]
