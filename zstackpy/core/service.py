"""Service: a class subscribed to the bus, with handlers declared by ``@handles``.

A service is an async context manager: what ``__aenter__`` starts, ``__aexit__`` stops. The
node enters services in registration order and leaves them in reverse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from zstackpy.core.bus.message import Message, Reply
from zstackpy.core.errors import ErrorInfo, SysErr

if TYPE_CHECKING:
    from zstackpy.core.context import NodeContext

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_HANDLES_ATTR = "__zstack_handles__"


@dataclass(frozen=True, slots=True)
class ServiceFigure:
    """One figure a service shows in ``/metrics`` (``zstack_<name>``); a counter only
    grows, a gauge is a current value."""

    name: str
    doc: str
    value: float
    counter: bool = False


def handles(*message_types: type[Message]) -> Callable[[F], F]:
    """Mark an ``async def`` method as the handler of these message types."""

    def mark(fn: F) -> F:
        setattr(fn, _HANDLES_ATTR, message_types)
        return fn

    return mark


class Service:
    """Base of every service. ``name`` is its bus id (the ``<service>`` of its queue name)."""

    name: ClassVar[str] = ""
    _handlers: ClassVar[dict[type[Message], str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type[Message], str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for msg_type in getattr(value, _HANDLES_ATTR, ()):
                    table[msg_type] = attr
        cls._handlers = table

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx

    @classmethod
    def handled_types(cls) -> frozenset[type[Message]]:
        return frozenset(cls._handlers)

    async def handle(self, msg: Message) -> Reply | None:
        attr = self._handlers.get(type(msg))
        if attr is None:
            return Reply.failure(
                ErrorInfo(
                    code=SysErr.UNKNOWN_MESSAGE,
                    description=f"service {self.name!r} does not handle {msg.wire_type()}",
                    details={"service": self.name, "message": msg.wire_type()},
                )
            )
        result: Reply | None = await getattr(self, attr)(msg)
        return result

    async def start(self) -> None:
        """Start background work; called once the bus and database are up."""

    async def node_ready(self) -> None:
        """Called once every service has started, just before the node reports ready:
        begin work that needs other services (reconnecting hosts runs their plugins'
        connect hooks)."""

    async def stop(self) -> None:
        """Stop what start started."""

    def figures(self) -> Iterable[ServiceFigure]:
        """The service's own figures for ``/metrics``, read at each scrape (cheap)."""
        return ()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
