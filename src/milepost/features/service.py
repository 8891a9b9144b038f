"""The feature store service: apply definitions, build training sets, serve online.

Everything takes the loaded :class:`~milepost.features.repo.Definitions`, because
transforms and on-demand features are code that lives in the user's repository; the
metadata store holds each version's definition (and fingerprint) for lineage, planning
and for reading versions without transforms after the code moved on.

:class:`FeatureService` is the entry point; its parts live beside it: refs and plans in
:mod:`.resolve`, training sets in :mod:`.historical`, online reads in
:mod:`.online_reads`, materialization in :mod:`.materialize`, online/offline
agreement in :mod:`.consistency` and the model server's reader in :mod:`.serving`.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pandas as pd

from milepost import _validate as check
from milepost._actor import ActorAttribute
from milepost.errors import BackendUnavailable, ConfigError, InvalidInput
from milepost.features import consistency, historical, online_reads, versions
from milepost.features import materialize as materialize_mod
from milepost.features import online as online_mod
from milepost.features.backends.sql import SqlFeatureRegistry, VersionRecord
from milepost.features.consistency import ConsistencyReport
from milepost.features.definitions import FeatureView, OnDemandFeatureView, PushSource
from milepost.features.offline import OfflineStore, run_transform
from milepost.features.online_reads import OnlineResponse
from milepost.features.packing import pack_frame, pack_records
from milepost.features.push import PushBuffer, offline_rows, small_records
from milepost.features.refs import (
    MAX_SAMPLE,
    check_materialize_options,
    check_moment,
    check_rows,
)
from milepost.features.refs import (
    view_name as check_view_name,
)
from milepost.features.refs import (
    view_ref as check_view_ref,
)
from milepost.features.repo import Definitions, PlanItem
from milepost.features.resolve import Plan, Resolver
from milepost.features.serving import ServingReader, serving_reader

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from milepost.config import Settings
    from milepost.data.service import DataService
    from milepost.features.materialize import Materialization, OnlineCoverage
    from milepost.stores.metadata import MetadataStore
    from milepost.tracking.service import TrackingService

__all__ = ["ConsistencyReport", "FeatureService", "OnlineResponse", "ServingReader"]


class FeatureService:
    """Feature definitions, offline retrieval, materialization, push and online reads."""

    actor = ActorAttribute()

    def __init__(
        self, db: MetadataStore, settings: Settings, *, data: DataService, tracking: TrackingService
    ) -> None:
        self.registry = SqlFeatureRegistry(db)
        self.settings = settings
        self.actor = settings.actor()
        self.tracking = tracking
        options = (
            {"client_kwargs": {"endpoint_url": settings.s3_endpoint_url}}
            if settings.s3_endpoint_url
            else {}
        )
        self.offline = OfflineStore(
            settings.resolved_offline_uri(),
            data=data,
            cache_dir=settings.home / "cache" / "features",
            storage_options=options,
        )
        self._online: online_mod.OnlineStore | None = None
        self._lock = threading.Lock()
        self._records: tuple[float, list[VersionRecord]] | None = None
        self._holdings: versions.Holdings | None = None  # refreshed with the records
        self.resolver = Resolver(self.registry, self.records)
        self.pushes = PushBuffer(self.offline, max_pending_rows=settings.push_max_pending_rows)

    @property
    def online(self) -> online_mod.OnlineStore:
        """The online store (opened on first use)."""
        if self._online is None:
            with self._lock:
                if self._online is None:
                    self._online = online_mod.open_online_store(self.settings.resolved_online_uri())
        return self._online

    # -- definitions --------------------------------------------------------------------

    def records(self, *, fresh: bool = False) -> list[VersionRecord]:
        """Registered view versions (cached for a second: reads must not query per call)."""
        now = time.monotonic()
        if fresh or self._records is None or now - self._records[0] > 1.0:
            records = self.registry.versions()
            if self._records is None or records != self._records[1]:
                self.resolver.clear()  # plans name versions: resolve again
            else:
                self.resolver.recheck()  # same versions; what the store holds may differ
            self._records = (now, records)
            self._holdings = None
        return self._records[1]

    def refresh(self) -> None:
        """Read the registered versions and what the online store holds again, now.

        Reads find both cached for a second (:meth:`records`); the read that finds them
        expired reads them again itself (two metadata round trips, 1-2 ms). A long-lived
        server calls this more often than that, off its request path, so no request does.
        The new pair replaces the old one at once: a read never sees records without
        their holdings.
        """
        records = self.registry.versions()
        holdings = versions.Holdings.read(self.online, self.registry.watermarks())
        old = self._records
        self._holdings = holdings
        self._records = (time.monotonic(), records)
        if old is None or records != old[1]:
            self.resolver.clear()  # plans name versions: resolve again
        else:
            self.resolver.recheck()  # same versions; what the store holds may differ

    def holdings(self, *, fresh: bool = False) -> versions.Holdings:
        """Which versions the current online store holds (cached with the records, so
        online reads cost no extra round trip; ``fresh`` reads again)."""
        self.records(fresh=fresh)
        if fresh or self._holdings is None:
            self._holdings = versions.Holdings.read(self.online, self.registry.watermarks())
        return self._holdings

    @staticmethod
    def _view_payload(
        view: FeatureView | OnDemandFeatureView, defs: Definitions, git: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "name": view.name,
            "kind": "on_demand" if isinstance(view, OnDemandFeatureView) else "feature_view",
            "fingerprint": view.fingerprint(),
            "definition": view.definition(),
            "description": view.description,
            "version": view.version,
            "origin": versions.origin(view, defs, git),
        }

    def plan(self, defs: Definitions) -> list[PlanItem]:
        """What :meth:`apply` would change, without changing anything."""
        by_view: dict[str, list[VersionRecord]] = {}
        for rec in self.records(fresh=True):
            by_view.setdefault(rec.name, []).append(rec)
        items = []
        for name, view in sorted(defs.views.items()):
            fp = view.fingerprint()
            existing = by_view.get(name, [])
            same = next((r for r in existing if r.fingerprint == fp), None)
            current = max((r.version for r in existing if r.status == "active"), default=None)
            if same is not None:
                change = "reactivated" if same.status == "retired" else "unchanged"
                items.append(PlanItem(name, change, current, same.version, fp))
            else:
                latest = max((r.version for r in existing), default=0)
                items.append(
                    PlanItem(
                        name, "new" if not existing else "new_version", current, latest + 1, fp
                    )
                )
        for name in sorted(set(by_view) - set(defs.views)):
            current = max((r.version for r in by_view[name] if r.status == "active"), default=None)
            if current is not None:
                items.append(PlanItem(name, "not_in_definitions", current, None, None))
        return items

    def apply(self, defs: Definitions) -> list[PlanItem]:
        """Register entities and changed views as new versions, all in one transaction.

        Each item says the version before and after, and what to run next: materialize
        a version the online store does not hold yet; models that keep reading an older
        version they pin.
        """
        entities = [e.to_dict() for e in defs.entities.values()]
        ordered = sorted(defs.views.values(), key=lambda v: isinstance(v, OnDemandFeatureView))
        git: dict[str, Any] = {}  # git state per file, asked once per apply
        results = self.registry.apply(
            entities, [self._view_payload(v, defs, git) for v in ordered], actor=self.actor
        )
        records = {(r.name, r.version): r for r in self.records(fresh=True)}
        try:  # apply never fails for the online store: the steps then say less
            holdings: versions.Holdings | None = self.holdings(fresh=True)
        except (BackendUnavailable, ConfigError):
            holdings = None
        items = []
        for name, version, change, current in results:
            rec = records[(name, version)]
            changed = change in ("new_version", "reactivated")
            pinned = self.registry.pinned_by(name) if changed else []
            steps = versions.next_steps(rec, change, current, holdings, pinned)
            items.append(PlanItem(name, change, current, version, rec.fingerprint, steps))
        return items

    def retire(self, name: str, version: int) -> None:
        """Retire a version (refused while a Staging or Production model pins it)."""
        check_view_name(name)
        check.integer(version, "Feature view version", minimum=1)
        self.registry.retire(name, version, actor=self.actor)
        identity = self.online.identity()
        if identity is not None:  # forget first: a failed delete then costs only a refill
            self.registry.forget_watermark(name, version, identity.store_id)
        self.online.delete_view(f"{name}:v{version}")
        self.records(fresh=True)

    def _record(self, name: str, version: int | None, defs: Definitions) -> VersionRecord:
        """The registered version a ref reads (see :meth:`Resolver.record`)."""
        return self.resolver.record(name, version, defs)

    def _view(self, rec: VersionRecord, defs: Definitions) -> FeatureView | OnDemandFeatureView:
        """The view object for a registered version (see :meth:`Resolver.view`)."""
        return self.resolver.view(rec, defs)

    def resolve(self, defs: Definitions, refs: Sequence[str], *, full_names: bool = False) -> Plan:
        """Turn ``view:feature`` / ``view:vN:feature`` refs into per-version requests."""
        return self.resolver.resolve(defs, refs, full_names=full_names)

    # -- offline --------------------------------------------------------------------------

    def get_historical_features(
        self,
        defs: Definitions,
        entity_df: pd.DataFrame,
        features: Sequence[str],
        *,
        timestamp_column: str = "event_timestamp",
        full_feature_names: bool = False,
        run_id: str | None = None,
    ) -> pd.DataFrame:
        """One row per entity row, in order, with point-in-time-correct features."""
        return historical.get_historical_features(
            self,
            defs,
            entity_df,
            features,
            timestamp_column=timestamp_column,
            full_feature_names=full_feature_names,
            run_id=run_id,
        )

    # -- online ---------------------------------------------------------------------------

    def materialize(
        self,
        defs: Definitions,
        *,
        start: datetime | None,
        end: datetime,
        views: Sequence[str] | None = None,
        progress: Callable[[str, int], None] | None = None,
    ) -> Materialization:
        """Load the newest row per entity in ``[start, end)`` into the online store.

        Chunked (DuckDB streams the newest rows per entity in batches), idempotent (only
        newer rows replace stored ones) and recorded as what this online store holds of
        the version: ``[start, end)`` only, so a later incremental run still fills what
        lies before it.
        """
        check_moment(start, "start", optional=True)
        check_moment(end, "end")
        check_materialize_options(views, progress)
        try:
            return materialize_mod.materialize(
                self, defs, start=start, end=end, views=views, progress=progress
            )
        finally:
            self.records(fresh=True)  # what the online store holds changed

    def materialize_incremental(
        self,
        defs: Definitions,
        *,
        end: datetime | None = None,
        views: Sequence[str] | None = None,
        progress: Callable[[str, int], None] | None = None,
    ) -> Materialization:
        """Write what this online store lacks of each version's TTL window before ``end``.

        From the store's watermark when it holds the window up to there; the whole TTL
        window when the store holds none of the version's rows (new, switched, emptied or
        restored from an older snapshot); and what lies before a range materialized
        earlier.
        """
        check_moment(end, "end", optional=True)
        check_materialize_options(views, progress)
        try:
            return materialize_mod.materialize_incremental(
                self, defs, end=end, views=views, progress=progress
            )
        finally:
            self.records(fresh=True)  # what the online store holds changed

    def online_status(self, records: Sequence[VersionRecord] | None = None) -> list[OnlineCoverage]:
        """Per registered version (or per one of ``records``): what the current online
        store holds of it."""
        return materialize_mod.online_status(
            self, self.records(fresh=True) if records is None else records
        )

    def push(self, defs: Definitions, view_name: str, rows: pd.DataFrame) -> int:
        """Write rows to the online store now and append them to the offline store.

        ``view_name`` names a view whose source is a push source (or the push source
        itself); every applied view reading that source gets the rows, each through its
        own transform.
        """
        check_view_name(view_name)
        check_rows(rows, "rows")
        if not isinstance(rows, pd.DataFrame) and not len(rows):
            raise InvalidInput("push got no rows.")
        records = small_records(rows)
        frame = None
        if records is None:
            frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
            if frame.empty:
                raise InvalidInput("push got no rows.")
        target = defs.views.get(view_name)
        source = (
            target.source.name
            if isinstance(target, FeatureView) and isinstance(target.source, PushSource)
            else view_name
        )
        readers = [
            v
            for v in defs.views.values()
            if isinstance(v, FeatureView)
            and isinstance(v.source, PushSource)
            and v.source.name == source
        ]
        if not readers:
            raise InvalidInput(
                f"No feature view reads push source {source!r}.",
                hint="Define a FeatureView with source=PushSource(...).",
            )
        for view in readers:
            rec = self._record(view.name, None, defs)
            if records is not None and view.transform is None:
                packed = pack_records(view, records)  # a few rows: no DataFrame round trip
            else:
                if frame is None:
                    frame = pd.DataFrame(records)
                packed = pack_frame(view, run_transform(view, frame))
            self.online.write(rec.key, packed)
        self.pushes.append(source, offline_rows(readers, frame, records or []))
        return len(frame) if frame is not None else len(records or [])

    def get_online_features(
        self,
        defs: Definitions,
        features: Sequence[str],
        entity_rows: Sequence[dict[str, Any]] | pd.DataFrame,
        *,
        full_feature_names: bool = False,
        now: datetime | None = None,
    ) -> OnlineResponse:
        """The latest values per entity row, honouring each view's TTL.

        Raises:
            Conflict: a stored view version asked for (directly, or as an input of an
                on-demand view) is not in the current online store (see
                :class:`~milepost.features.versions.Holdings`).
        """
        return online_reads.get_online_features(
            self, defs, features, entity_rows, full_feature_names=full_feature_names, now=now
        )

    # -- consistency --------------------------------------------------------------------------

    def check_consistency(
        self,
        defs: Definitions,
        view_ref: str,
        *,
        sample: int = 100,
        now: datetime | None = None,
        rows: Sequence[dict[str, Any]] | None = None,
    ) -> ConsistencyReport:
        """Compare online values (one read per entity row, as serving reads) with offline
        point-in-time values at the same moment (see
        :func:`milepost.features.consistency.check_consistency`)."""
        check_view_ref(view_ref)
        check.integer(sample, "sample", minimum=1, maximum=MAX_SAMPLE)
        check_moment(now, "now", optional=True)
        if rows is not None:
            check_rows(rows, "rows")
        return consistency.check_consistency(
            self, defs, view_ref, sample=sample, now=now, rows=rows
        )

    def online_entities(self, defs: Definitions, view_ref: str, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` random entity keys that have rows online in a view."""
        check_view_ref(view_ref)
        check.integer(n, "n", minimum=1, maximum=MAX_SAMPLE)
        return consistency.online_entities(self, defs, view_ref, n)

    # -- serving --------------------------------------------------------------------------

    def serving_reader(self, refs: Sequence[str]) -> ServingReader:
        """Online reads of pinned ``view:vN:feature`` refs, without the repository's code.

        Transforms ran when rows were written, so reading needs only keys, TTL and
        schema, which the registry holds.

        Raises:
            InvalidInput: a ref is unversioned, on-demand, retired or never materialized.
        """
        return serving_reader(self, refs)

    def flush(self) -> None:
        """Write buffered pushes to the offline store."""
        self.pushes.flush()

    def close(self) -> None:
        """Flush pushes and close the online store."""
        self.pushes.close()
        if self._online is not None:
            self._online.close()
