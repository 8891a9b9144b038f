"""A runtime whose services are proxies to a ``milepost server``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milepost.client._transport import Transport

if TYPE_CHECKING:
    from types import TracebackType

    from milepost.config import ResolvedSettings, Settings

__all__ = ["RemoteRuntime"]


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
