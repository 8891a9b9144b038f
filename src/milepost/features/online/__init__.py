"""Online feature stores: the latest feature row per entity, for serving.

Each backend stores one packed row per (view version, entity key) holding the event
time, the created time and every feature value, and replaces it only with a newer row
(later event time, or the same event time and a later-or-equal created time), so
materializing twice, or out of order, converges on the same state.

Each store also holds its own identity (:class:`StoreIdentity`: a random id, its creation
time and a revision counted up by every materialization), written when the store is first
materialized into. The metadata store records what was materialized against that id and
revision, so a store that lost its data (a Redis restarted empty, a deleted SQLite file),
went back in time (a restored snapshot) or was swapped for another one is recognised as
not holding what the metadata says, and is refilled.

Add a backend by implementing :class:`OnlineStore` and naming it in ``_BACKENDS``.
"""

from __future__ import annotations

import importlib
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgpack

from milepost.errors import ConfigError, InvalidInput, mask_uri

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "OnlineRow",
    "OnlineStore",
    "StoreIdentity",
    "entity_key",
    "new_identity",
    "open_online_store",
    "pack",
    "unpack",
    "unstorable_key",
]


@dataclass(frozen=True)
class OnlineRow:
    """One entity's stored features in one view version."""

    entity: str
    event_ts: int  # ms since the epoch, UTC
    created_ts: int
    values: dict[str, Any]


@dataclass(frozen=True)
class StoreIdentity:
    """Who an online store is: its id, when it was created, how many commits it has seen.

    ``revision`` counts materializations committed into the store; a store whose revision
    is lower than one the metadata recorded for it went back in time (a restored snapshot).
    """

    store_id: str
    created_at: int  # ms since the epoch, UTC
    revision: int


def new_identity() -> StoreIdentity:
    """A fresh identity: a random id, created now, revision 0."""
    return StoreIdentity(uuid.uuid4().hex, int(time.time() * 1000), 0)


def pack(event_ts: int, created_ts: int, values: Sequence[Any]) -> bytes:
    """The stored form: msgpack of ``[event_ts, created_ts, [values...]]``."""
    return msgpack.packb([event_ts, created_ts, list(values)], use_bin_type=True)  # type: ignore[no-any-return]


def unpack(data: bytes) -> tuple[int, int, list[Any]]:
    """Inverse of :func:`pack`."""
    event_ts, created_ts, values = msgpack.unpackb(data, raw=False)
    return int(event_ts), int(created_ts), list(values)


def entity_key(values: Sequence[Any]) -> str:
    """A stable text key for join-key values (types matter: 5 and "5" differ)."""
    if len(values) == 1:  # the common case, without the list
        v = values[0]
        kind = type(v)
        if kind is int:
            return f"n:{v!r}"
        if kind is str:
            return f"s:{v}"
    parts = []
    for raw in values:
        v = raw.item() if hasattr(raw, "item") else raw  # numpy scalars
        parts.append(f"s:{v}" if isinstance(v, str) else f"n:{v!r}")
    return "\x1f".join(parts)


def unstorable_key(exc: UnicodeEncodeError) -> InvalidInput:
    """An entity key whose text no store can hold (a lone surrogate), as InvalidInput."""
    bad = exc.object[exc.start : exc.end]
    return InvalidInput(
        f"An entity key contains {bad!r}, which cannot be stored ({exc.reason}).",
        hint="Join-key values must be valid Unicode text or numbers.",
    )


@runtime_checkable
class OnlineStore(Protocol):
    """The latest row per entity, per view version key (``view:vN``)."""

    uri: str

    def write(self, view_key: str, rows: Sequence[tuple[str, int, int, bytes]]) -> int:
        """Upsert ``(entity, event_ts, created_ts, packed)`` rows; only newer rows replace.

        Returns the number of rows offered (writes are idempotent).
        """
        ...

    def read(self, view_key: str, entities: Sequence[str]) -> list[bytes | None]:
        """Packed rows in the order of ``entities`` (None where absent)."""
        ...

    def sample(self, view_key: str, n: int) -> list[str]:
        """Up to ``n`` entity keys stored for a view version."""
        ...

    def delete_view(self, view_key: str) -> None:
        """Drop every row of a view version."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def identity(self) -> StoreIdentity | None:
        """The store's identity, or None when it has none (new, emptied, or restarted empty)."""
        ...

    def claim_identity(self, replacing: str | None = None) -> StoreIdentity:
        """The store's identity, created first when it has none.

        With ``replacing``, a new identity replaces the current one when its id is
        ``replacing`` (the store was found older than the metadata says). Atomic: callers
        racing each other all get the identity that won.
        """
        ...

    def bump_revision(self, store_id: str) -> int | None:
        """Count one committed materialization: the new revision, or None when the store's
        identity is no longer ``store_id`` (it was reset meanwhile)."""
        ...


_BACKENDS = {
    "sqlite": "milepost.features.online.sqlite:SqliteOnlineStore",
    "redis": "milepost.features.online.redis:RedisOnlineStore",
    "rediss": "milepost.features.online.redis:RedisOnlineStore",
}


def open_online_store(uri: str, **options: Any) -> OnlineStore:
    """The online store for ``sqlite:///path`` or ``redis://host:6379/0``."""
    scheme = uri.partition("://")[0] if "://" in uri else uri.partition(":")[0]
    target = _BACKENDS.get(scheme)
    if target is None:
        raise ConfigError(
            f"Online store URI {mask_uri(uri)!r} has an unsupported scheme {scheme!r}.",
            hint="Use sqlite:///path/online.db or redis://host:6379/0.",
        )
    module_name, _, cls_name = target.partition(":")
    store: OnlineStore = getattr(importlib.import_module(module_name), cls_name)(uri, **options)
    return store
