"""Who is acting: the process's user, or the caller of one server request.

Every service records an actor (runs' authors, audit events, approvals). Embedded, it is
the process's user (``Settings.actor()``), fixed when the service is built. The platform
server (``milepost server``) serves many callers from one set of services: it runs each
request inside :func:`acting_as` with the identity of the request's token, and every
service's ``actor`` attribute (an :class:`ActorAttribute`) reads that identity first.
A context variable, so concurrent requests (threads or tasks) each see their own.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ActorAttribute", "acting_as", "current_actor"]

_acting: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "milepost_acting_as", default=None
)


def current_actor() -> str | None:
    """The identity set by :func:`acting_as` in this context, or None."""
    return _acting.get()


@contextmanager
def acting_as(actor: str) -> Iterator[str]:
    """Run the block as ``actor``: every service's ``actor`` is ``actor`` inside it."""
    token = _acting.set(actor)
    try:
        yield actor
    finally:
        _acting.reset(token)


class ActorAttribute:
    """A service's ``actor``: the identity :func:`acting_as` set, else the one assigned.

    Declare it on the class (``actor = ActorAttribute()``) and assign the process's user
    in ``__init__`` as before (``self.actor = settings.actor()``).
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_default_{name}"

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> ActorAttribute: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> str: ...
    def __get__(self, obj: object, owner: type | None = None) -> ActorAttribute | str:
        if obj is None:
            return self
        acting = _acting.get()
        if acting is not None:
            return acting
        return str(obj.__dict__[self._slot])

    def __set__(self, obj: object, value: str) -> None:
        obj.__dict__[self._slot] = value
