"""A runtime whose services are proxies to a ``milepost server``."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from milepost.client._transport import Transport
from milepost.errors import ConfigError

if TYPE_CHECKING:
    from types import TracebackType

    from milepost.config import ResolvedSettings, Settings

__all__ = ["PROXIES", "RemoteRuntime", "RemoteUnavailable"]

#: Service name -> the proxy class (``module:Class``) standing in for it remotely. Each
#: proxy is built as ``Class(runtime)``, reaching the server through
#: ``runtime.transport`` and other proxies through ``runtime.<name>``.
PROXIES: dict[str, str] = {
    "tracking": "milepost.client.tracking:RemoteTracking",
    "data": "milepost.client.data:RemoteData",
    "features": "milepost.client.features:RemoteFeatures",
    "models": "milepost.client.registry:RemoteModels",
    "evaluation": "milepost.client.registry:RemoteEvaluation",
    "promotion": "milepost.client.promotion:RemotePromotion",
    "cards": "milepost.client.registry:RemoteCards",
    "serving": "milepost.client.deployments:RemoteDeployments",
    "monitors": "milepost.client.monitoring:RemoteMonitors",
    "pipelines": "milepost.client.pipelines:RemotePipelines",
    "triggers": "milepost.client.pipelines:RemoteTriggers",
    "lineage": "milepost.client.governance:RemoteLineage",
    "audit": "milepost.client.governance:RemoteAudit",
    "roles": "milepost.client.governance:RemoteRoles",
    "tokens": "milepost.client.governance:RemoteTokens",
}


class RemoteRuntime:
    """The remote twin of :class:`milepost.Runtime`.

    Each service attribute (``tracking``, ``models``, ...) is a proxy with the embedded
    service's methods and records, built on first use over one :class:`Transport`.
    """

    remote = True

    def __init__(self, resolved: ResolvedSettings) -> None:
        settings = resolved.settings
        if not settings.url:
            raise ConfigError(
                "A remote runtime needs the url setting.",
                hint="Set MILEPOST_URL to the server, e.g. http://127.0.0.1:8080.",
            )
        self.resolved = resolved
        token = settings.token.get_secret_value() if settings.token is not None else None
        self.transport = Transport(settings.url, token)
        self._services: dict[str, Any] = {}
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        target = PROXIES.get(name)
        if target is None:
            if name.startswith("_") or name in ("transport", "resolved"):
                raise AttributeError(name)  # not built yet (or a protocol probe)
            raise RemoteUnavailable(
                f"{name!r} is not available in remote mode: this process talks to the "
                f"Milepost server at {self.transport.url} (MILEPOST_URL), not to the stores.",
                hint="Run this where the stores are reachable, without MILEPOST_URL (e.g. "
                "on the server's host), or use the server's API.",
            )
        proxy = self._services.get(name)
        if proxy is None:
            with self._lock:
                proxy = self._services.get(name)
                if proxy is None:
                    proxy = self._services[name] = _build(name, target, self)
        return proxy

    @property
    def settings(self) -> Settings:
        return self.resolved.settings

    def whoami(self) -> dict[str, Any]:
        """Who the server takes this client for: user, role, token id and project."""
        return dict(self.transport.request("GET", "/whoami"))

    def close(self) -> None:
        """Flush pending writes (metrics), stop background senders, close the pool."""
        with self._lock:
            services, self._services = list(self._services.values()), {}
        try:
            for proxy in reversed(services):
                close = getattr(proxy, "close", None)
                if callable(close):
                    close()
        finally:
            self.transport.close()

    def __enter__(self) -> RemoteRuntime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemoteRuntime {self.transport.url}>"


class RemoteUnavailable(ConfigError, AttributeError):
    """Something embedded mode has that a remote runtime does not (yet).

    A :class:`~milepost.errors.ConfigError`, so it is reported like every Milepost error;
    also an ``AttributeError``, so ``hasattr(runtime, name)`` stays False.
    """


def _build(name: str, target: str, runtime: RemoteRuntime) -> Any:
    module, _, cls = target.partition(":")
    try:
        proxy_class = getattr(importlib.import_module(module), cls, None)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        proxy_class = None
    if proxy_class is None:
        raise RemoteUnavailable(
            f"{name!r} is not available in remote mode yet: this Milepost has no remote "
            f"client for it ({target}).",
            hint="Run it where the stores are reachable, without MILEPOST_URL.",
        )
    return proxy_class(runtime)
