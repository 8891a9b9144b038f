"""Remote proxy of the feature service's admin side: view versions, entities, what the
online store holds, retiring a version.

:class:`RemoteFeatures` answers what ``milepost features list`` and the registry read
(``records()``, ``registry.versions()``, ``online_status()``) from the server. Applying
definitions, materializing, pushing and reading features need the definitions module and
the feature stores, so they run where those are; here they raise InvalidInput saying so.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from milepost import _validate as check
from milepost._records import record_from_dict
from milepost.client.registry import local_only

if TYPE_CHECKING:
    from collections.abc import Sequence

    from milepost.client._runtime import RemoteRuntime
    from milepost.features.backends.sql import VersionRecord
    from milepost.features.materialize import OnlineCoverage

__all__ = ["RemoteFeatures"]


def _records(answer: Any) -> list[VersionRecord]:
    from milepost.features.backends.sql import VersionRecord

    return [record_from_dict(VersionRecord, d) for d in answer["items"]]


def _coverage(d: dict[str, Any]) -> OnlineCoverage:
    from milepost.features.materialize import OnlineCoverage

    def moment(text: str | None) -> datetime | None:
        return None if text is None else datetime.fromisoformat(text)

    return OnlineCoverage(
        view=d["view"],
        store_id=d["store_id"],
        store_uri=d["store_uri"],
        intervals=[(moment(s), datetime.fromisoformat(e)) for s, e in d["intervals"]],
        ttl_seconds=d.get("ttl_seconds"),
        elsewhere=list(d.get("elsewhere") or []),
    )


class _RemoteFeatureRegistry:
    """The read side of the feature registry (``service.registry``) over HTTP."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self.runtime = runtime

    def versions(self, *, include_retired: bool = True) -> list[VersionRecord]:
        """Every view version, by view name then version."""
        check.boolean(include_retired, "include_retired")
        answer = self.runtime.transport.request(
            "GET", "/feature-views", params={"include_retired": str(include_retired).lower()}
        )
        return _records(answer)

    def entities(self) -> dict[str, list[str]]:
        """Registered entities and their join keys."""
        found: dict[str, list[str]] = self.runtime.transport.request("GET", "/feature-entities")[
            "entities"
        ]
        return found


class RemoteFeatures:
    """``rt.features`` over HTTP (the admin side)."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self.runtime = runtime
        self.registry = _RemoteFeatureRegistry(runtime)

    def records(self, *, fresh: bool = False) -> list[VersionRecord]:
        """Registered view versions (every read asks the server)."""
        return self.registry.versions()

    def view_versions(self, name: str) -> list[VersionRecord]:
        """The versions of one view, oldest first (NotFound: no such view)."""
        check.name(name, "Feature view name")
        answer = self.runtime.transport.request(
            "GET", f"/feature-views/{quote(name, safe='')}/versions"
        )
        return _records(answer)

    def online_status(self, records: Sequence[VersionRecord] | None = None) -> list[OnlineCoverage]:
        """Per registered version (or per one of ``records``): what the server's online
        store holds of it."""
        answer = self.runtime.transport.request("GET", "/feature-online-status")
        found = [_coverage(d) for d in answer["items"]]
        if records is None:
            return found
        wanted = {r.key for r in records}
        return [c for c in found if c.view in wanted]

    def retire(self, name: str, version: int) -> None:
        """Retire a version (refused while a Staging or Production model pins it)."""
        check.name(name, "Feature view name")
        check.integer(version, "Feature view version", minimum=1)
        self.runtime.transport.request(
            "POST", f"/feature-views/{quote(name, safe='')}/versions/{version}/retire"
        )

    # -- what needs the definitions and the feature stores here ------------------------

    def _local(self, what: str) -> Any:
        raise local_only(what, "the feature definitions and the feature stores")

    def plan(self, *args: Any, **kwargs: Any) -> Any:
        """Refused remotely."""
        return self._local("Planning feature definitions")

    def apply(self, *args: Any, **kwargs: Any) -> Any:
        """Refused remotely."""
        return self._local("Applying feature definitions")

    def materialize(self, *args: Any, **kwargs: Any) -> Any:
        """Refused remotely."""
        return self._local("Materializing features")

    def materialize_incremental(self, *args: Any, **kwargs: Any) -> Any:
        """Refused remotely."""
        return self._local("Materializing features")

    def push(self, *args: Any, **kwargs: Any) -> Any:
        """Refused remotely."""
        return self._local("Pushing feature rows")

    def get_historical_features(self, *args: Any, **kwargs: Any) -> Any:
        """Refused remotely."""
        return self._local("Building a training set")

    def get_online_features(self, *args: Any, **kwargs: Any) -> Any:
        """Refused remotely (the feature server answers online reads over HTTP)."""
        return self._local("Reading online features")

    def flush(self) -> None:
        """Nothing is buffered remotely."""

    def close(self) -> None:
        """Nothing to close remotely."""
