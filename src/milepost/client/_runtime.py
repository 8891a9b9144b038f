"""A runtime whose services are proxies to a ``milepost server``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from milepost.client._transport import Transport

if TYPE_CHECKING:
    from types import TracebackType

    from milepost.config import ResolvedSettings, Settings

__all__ = ["PROXIES", "RemoteRuntime"]

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
            raise ValueError("RemoteRuntime needs the url setting (MILEPOST_URL)")
        self.resolved = resolved
        token = settings.token.get_secret_value() if settings.token is not None else None
        self.transport = Transport(settings.url, token)
        self._services: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        target = PROXIES.get(name)
        if target is None:
            raise AttributeError(f"{name!r} is not available in remote mode (MILEPOST_URL is set)")
        proxy = self._services.get(name)
        if proxy is None:
            module, _, cls = target.partition(":")
            proxy = getattr(importlib.import_module(module), cls)(self)
            self._services[name] = proxy
        return proxy

    @property
    def settings(self) -> Settings:
        return self.resolved.settings

    def close(self) -> None:
        """Flush pending writes and close the connection pool."""
        tracking = self._services.get("tracking")
        if tracking is not None:
            tracking.flush()
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
