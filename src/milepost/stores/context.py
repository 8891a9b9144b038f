"""A store context: settings plus the metadata database and artifact store opened from them.

Every service is built on a context and kept in it, one per service type, so whoever asks
a context for a service gets the same instance (one background writer, one connection
pool, one cache)::

    ctx = default_context()                     # the process's, from the settings
    svc = ctx.component(DataService, lambda c: DataService(c.db, c.blobs, c.settings))

The runtime (``milepost.Runtime``) composes every service on a context, and a capability's
module-level functions (``milepost.data.register()``) take theirs from the process's
default context; both build on this layer, the way httpx's module-level ``httpx.get()``
builds on a ``Client``. Nothing here knows a capability, so capabilities never reach up
to the runtime or the fluent API.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, TypeVar

from milepost.config import ResolvedSettings, Settings, load_settings
from milepost.errors import ConfigError, InvalidInput
from milepost.stores.blobs import BlobStore, open_blob_store
from milepost.stores.metadata import MetadataStore

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "StoreContext",
    "default_context",
    "process_remote",
    "replace_default_context",
    "replace_process_remote",
    "swap_process_stores",
]

T = TypeVar("T")


class StoreContext:
    """Settings, the stores opened from them and the services built on them.

    Args:
        resolved: the settings with where each value came from (``load_settings()``).
    """

    def __init__(self, resolved: ResolvedSettings) -> None:
        if not isinstance(resolved, ResolvedSettings):
            raise InvalidInput(
                f"StoreContext takes ResolvedSettings, got {type(resolved).__name__}.",
                hint="Build them with milepost.load_settings().",
            )
        self.resolved = resolved
        self.settings: Settings = resolved.settings
        self.db = MetadataStore(
            self.settings.resolved_metadata_uri(),
            busy_timeout=self.settings.sqlite_busy_timeout,
            connect_timeout=self.settings.db_connect_timeout,
            statement_timeout=self.settings.db_statement_timeout,
        )
        artifact_uri = self.settings.resolved_artifact_uri()
        self.blobs: BlobStore = open_blob_store(
            artifact_uri,
            **(
                {"endpoint_url": self.settings.s3_endpoint_url}
                if artifact_uri.startswith("s3://")
                else {}
            ),
        )
        self._components: dict[type[Any], Any] = {}
        self._lock = threading.RLock()  # re-entrant: a builder asks for what it needs
        _live.add(self)  # its pooled connections are dropped in a forked child

    def component(self, key: type[T], build: Callable[[StoreContext], T]) -> T:
        """This context's instance of ``key``, built by ``build(self)`` on first use."""
        found = self._components.get(key)
        if found is None:
            with self._lock:
                found = self._components.get(key)
                if found is None:
                    found = self._components[key] = build(self)
        return found

    def close(self) -> None:
        """Close the services (newest first: they may use older ones), then the stores."""
        with self._lock:
            components, self._components = list(self._components.values()), {}
        for obj in reversed(components):
            close = getattr(obj, "close", None)
            if callable(close):
                close()
        self.db.dispose()

    def __repr__(self) -> str:
        return f"<StoreContext {self.settings.resolved_metadata_uri()}>"


_default: StoreContext | None = None
_live: weakref.WeakSet[StoreContext] = weakref.WeakSet()  # every context not yet collected
_default_lock = threading.RLock()

#: Remote mode (the ``url`` setting): the process's runtime is the remote client's, chosen
#: by the setting and imported by name on first use, as a backend chosen by URI scheme is
#: (this layer does not depend on the client).
_REMOTE_RUNTIME = ("milepost.client", "RemoteRuntime")
_remote: Any = None


def _build_remote(resolved: ResolvedSettings) -> Any:
    import importlib

    module, name = _REMOTE_RUNTIME
    return getattr(importlib.import_module(module), name)(resolved)


def process_remote() -> Any | None:
    """The process's remote runtime when the settings name a server (``url``), else None.

    Decided once, on first use: with ``url`` unset the process's default (embedded) store
    context is built instead. Module-level capability functions (``milepost.data.register``)
    ask this first, so in remote mode they reach the server, never a local store.
    """
    global _default, _remote
    if _remote is not None:
        return _remote
    if _default is not None:
        return None
    with _default_lock:
        if _remote is None and _default is None:
            resolved = load_settings()
            if resolved.settings.url:
                _remote = _build_remote(resolved)
            else:
                _default = StoreContext(resolved)
        return _remote


def replace_process_remote(resolved: ResolvedSettings | None) -> Any:
    """Switch the process to remote mode on ``resolved`` (a new remote runtime, returned),
    or out of it (None); the previous remote runtime is closed either way."""
    global _remote
    with _default_lock:
        old = _remote
        _remote = None if resolved is None else _build_remote(resolved)
        new = _remote
    if old is not None:
        old.close()
    return new


def default_context() -> StoreContext:
    """The process's context, built from the settings on first use."""
    global _default
    ctx = _default
    if ctx is None:
        with _default_lock:
            if _default is None:
                resolved = load_settings()
                if resolved.settings.url or _remote is not None:
                    raise ConfigError(
                        "This process is in remote mode (MILEPOST_URL is set): it uses the "
                        "server's stores and opens none of its own, and this needs them.",
                        hint="Run it where the stores are (without MILEPOST_URL), or use "
                        "milepost.Client() / milepost.get_runtime(), which work remotely.",
                    )
                _default = StoreContext(resolved)
            ctx = _default
    return ctx


def replace_default_context(ctx: StoreContext | None) -> None:
    """Make ``ctx`` the process's context and close the previous one.

    ``None`` drops it: the next :func:`default_context` re-reads the settings.
    """
    global _default
    with _default_lock:
        old, _default = _default, ctx
    if old is not None and old is not ctx:
        old.close()


def swap_process_stores(ctx: StoreContext | None, remote: Any = None) -> tuple[Any, Any]:
    """Make ``ctx`` (and ``remote``, None for embedded) the process's, and return the
    previous ``(context, remote runtime)`` without closing either.

    For a temporary switch that switches back (:func:`milepost.project.sandbox`); the
    caller closes what it opened. :func:`replace_default_context` closes the previous one.
    """
    global _default, _remote
    with _default_lock:
        previous = (_default, _remote)
        _default, _remote = ctx, remote
    return previous


def _after_fork_in_child() -> None:
    # Pooled connections belong to the parent; the child opens its own. Every context:
    # the process's and each Runtime.open() one (a forked worker may use either).
    for ctx in list(_live):
        ctx.db.engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)
