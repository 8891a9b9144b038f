"""The feature store service: apply definitions, build training sets, serve online.

Everything takes the loaded :class:`~milepost.features.repo.Definitions`, because
transforms and on-demand features are code that lives in the user's repository; the
metadata store holds each version's definition (and fingerprint) for lineage, planning
and for reading versions without transforms after the code moved on.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from milepost import _validate as check
from milepost.errors import BackendUnavailable, ConfigError, InvalidInput, NotFound, did_you_mean
from milepost.features import consistency, versions
from milepost.features import materialize as materialize_mod
from milepost.features import online as online_mod
from milepost.features.backends.sql import SqlFeatureRegistry, VersionRecord
from milepost.features.consistency import ConsistencyReport, decode_key
from milepost.features.definitions import FeatureView, OnDemandFeatureView, PushSource
from milepost.features.offline import OfflineStore, ViewRequest, run_transform
from milepost.features.push import PushBuffer, offline_rows, pack_records, small_records
from milepost.features.repo import Definitions, PlanItem
from milepost.features.transforms import StoredTransform

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from milepost.config import Settings
    from milepost.data.service import DataService
    from milepost.features.materialize import Materialization, OnlineCoverage
    from milepost.stores.metadata import MetadataStore
    from milepost.tracking.service import TrackingService

__all__ = ["ConsistencyReport", "FeatureService", "OnlineResponse", "ServingReader"]

_SAMPLE_ROWS = 1000


@dataclass
class OnlineResponse:
    """Online features for a batch of entities: values and a status per value.

    Status: ``present``, ``expired`` (older than the view's TTL: the value is null) or
    ``missing`` (the store holds no row for the entity). A view version that the online
    store does not hold at all (applied but not materialized into it yet) is never read
    as missing: the read is refused (:class:`~milepost.errors.Conflict`) naming the
    version and the command that loads it.
    """

    features: list[str]
    values: dict[str, list[Any]]
    statuses: dict[str, list[str]]

    def to_dict(self) -> dict[str, list[Any]]:
        """``{feature: [value per entity row]}``."""
        return dict(self.values)

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for statuses in self.statuses.values():
            for status in statuses:
                counts[status] = counts.get(status, 0) + 1
        rows = len(next(iter(self.values.values()), []))
        seen = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        return f"OnlineResponse({len(self.features)} features x {rows} rows: {seen or 'empty'})"

    def to_df(self) -> pd.DataFrame:
        """One row per entity row, one column per feature."""
        return pd.DataFrame(self.values, columns=self.features)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per entity row."""
        n = len(next(iter(self.values.values()), []))
        return [{f: self.values[f][i] for f in self.features} for i in range(n)]


class ServingReader:
    """Reads a model's pinned features for entity rows (one lookup per view version)."""

    def __init__(self, service: FeatureService, requests: list[ViewRequest]) -> None:
        self.service = service
        self.requests = requests
        self.join_keys = sorted({k for r in requests for k in r.view.entity.join_keys})
        names = {(r.key, f): f for r in requests for f in r.features}
        self._plan = _Resolved(requests, [], names, list(names.values()), list(names.values()), {})

    def read(self, rows: list[dict[str, Any]]) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
        """``{feature: values}`` and ``{feature: statuses}`` for the rows, now."""
        values: dict[str, list[Any]] = {}
        statuses: dict[str, list[str]] = {}
        now_ms = int(time.time() * 1000)
        for req in self.requests:
            self.service._read_view(req, rows, now_ms, self._plan, values, statuses)
        return values, statuses


@dataclass
class _Resolved:
    stored: list[ViewRequest]
    on_demand: list[tuple[OnDemandFeatureView, int, list[str]]]
    names: dict[tuple[str, str], str]  # (view:vN, feature) -> internal column view__feature
    output: list[str]  # the requested features' column names, in request order
    internal: list[str]  # the internal column of each output
    fingerprints: dict[str, str]
    records: dict[str, VersionRecord] = field(default_factory=dict)  # stored view:vN
    # view versions the online store does not hold (computed on the first online read)
    unheld: list[VersionRecord] | None = None


def _ms(ts: Any) -> int:
    return int(pd.Timestamp(ts).value // 1_000_000)


class FeatureService:
    """Feature definitions, offline retrieval, materialization, push and online reads."""

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
        self._plans: dict[tuple[int, tuple[str, ...]], _Resolved] = {}
        self.pushes = PushBuffer(self.offline)

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
            self._records = (now, self.registry.versions())
            self._plans.clear()
            self._holdings = None
        return self._records[1]

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
            by_view.setdefault(rec["name"], []).append(rec)
        items = []
        for name, view in sorted(defs.views.items()):
            fp = view.fingerprint()
            existing = by_view.get(name, [])
            same = next((r for r in existing if r["fingerprint"] == fp), None)
            current = max((r["version"] for r in existing if r["status"] == "active"), default=None)
            if same is not None:
                change = "reactivated" if same["status"] == "retired" else "unchanged"
                items.append(PlanItem(name, change, current, same["version"], fp))
            else:
                latest = max((r["version"] for r in existing), default=0)
                items.append(
                    PlanItem(
                        name, "new" if not existing else "new_version", current, latest + 1, fp
                    )
                )
        for name in sorted(set(by_view) - set(defs.views)):
            current = max(
                (r["version"] for r in by_view[name] if r["status"] == "active"), default=None
            )
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
        records = {(r["name"], r["version"]): r for r in self.records(fresh=True)}
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
            items.append(PlanItem(name, change, current, version, rec["fingerprint"], steps))
        return items

    def retire(self, name: str, version: int) -> None:
        """Retire a version (refused while a Staging or Production model pins it)."""
        _view_name(name)
        check.integer(version, "Feature view version", minimum=1)
        self.registry.retire(name, version, actor=self.actor)
        identity = self.online.identity()
        if identity is not None:  # forget first: a failed delete then costs only a refill
            self.registry.forget_watermark(name, version, identity.store_id)
        self.online.delete_view(f"{name}:v{version}")
        self.records(fresh=True)

    def _record(self, name: str, version: int | None, defs: Definitions) -> VersionRecord:
        recs = [r for r in self.records() if r["name"] == name]
        if not recs:
            known = sorted({r["name"] for r in self.records()} | set(defs.views))
            if name in defs.views:
                raise InvalidInput(
                    f"Feature view {name!r} is defined but not applied.",
                    hint="Run `milepost features apply` first.",
                )
            raise self.registry.unknown(name, known)
        if version is None:
            view = defs.views.get(name)
            fp = view.fingerprint() if view is not None else None
            rec = next((r for r in recs if r["fingerprint"] == fp), None)
            if rec is None:
                if view is not None:
                    raise InvalidInput(
                        f"The definition of {name!r} in {defs.origin} differs from every "
                        "registered version.",
                        hint="Run `milepost features apply`, or ask for a version "
                        f"explicitly ({name}:v{max(r['version'] for r in recs)}:feature).",
                    )
                rec = max(
                    (r for r in recs if r["status"] == "active"),
                    key=lambda r: r["version"],
                    default=None,
                )
                if rec is None:
                    raise InvalidInput(f"Every version of {name!r} is retired.")
        else:
            rec = next((r for r in recs if r["version"] == version), None)
            if rec is None:
                raise NotFound(
                    f"Feature view {name!r} has no version {version} (versions: "
                    f"{', '.join(str(r['version']) for r in recs)})."
                )
        if rec["status"] != "active":
            raise InvalidInput(
                f"{name}:v{rec['version']} is retired.",
                hint="Use an active version, or apply its definition again.",
            )
        return rec

    def _view(self, rec: VersionRecord, defs: Definitions) -> FeatureView | OnDemandFeatureView:
        """The view object for a registered version: the definitions' own when it is
        that version, else rebuilt from the registry (see :mod:`.versions`)."""
        return versions.view_of(rec, self.records(), defs)

    def resolve(
        self, defs: Definitions, refs: Sequence[str], *, full_names: bool = False
    ) -> _Resolved:
        """Turn ``view:feature`` / ``view:vN:feature`` refs into per-version requests."""
        key = (id(defs), tuple(refs), full_names)
        self.records()
        cached = self._plans.get(key)  # type: ignore[arg-type]
        if cached is not None:
            return cached
        stored: dict[str, ViewRequest] = {}
        on_demand: dict[str, tuple[OnDemandFeatureView, int, list[str]]] = {}
        wanted: list[tuple[str, str]] = []
        fingerprints: dict[str, str] = {}
        records: dict[str, VersionRecord] = {}
        for ref in refs:
            name, version, feat = _parse_ref(ref)
            rec = self._record(name, version, defs)
            view = self._view(rec, defs)
            vkey = f"{name}:v{rec['version']}"
            fingerprints[vkey] = rec["fingerprint"]
            if feat not in view.features:
                raise NotFound(
                    f"Feature view {vkey} has no feature {feat!r}."
                    f"{did_you_mean(feat, view.features)}",
                    hint="Features: " + ", ".join(view.features) + ".",
                )
            if isinstance(view, OnDemandFeatureView):
                entry = on_demand.setdefault(vkey, (view, int(rec["version"]), []))
                entry[2].append(feat)
                self._add_inputs(defs, view, stored, fingerprints, records)
            else:
                req = stored.setdefault(vkey, ViewRequest(view, int(rec["version"]), []))
                records[vkey] = rec
                if feat not in req.features:
                    req.features.append(feat)
            wanted.append((vkey, feat))
        versions_of: dict[str, str] = {}
        for vkey in [*stored, *on_demand]:
            view_name = vkey.split(":")[0]
            if versions_of.setdefault(view_name, vkey) != vkey:
                raise InvalidInput(
                    f"Two versions of {view_name!r} in one request "
                    f"({versions_of[view_name]}, {vkey}); ask for one."
                )
        names = {
            (vkey, feat): f"{vkey.split(':')[0]}__{feat}"
            for vkey, req in stored.items()
            for feat in req.features
        }
        short = [f for _, f in wanted]
        output, internal = [], []
        for vkey, feat in wanted:
            full = f"{vkey.split(':')[0]}__{feat}"
            if not full_names and short.count(feat) > 1:
                raise InvalidInput(
                    f"Feature {feat!r} is requested from several views.",
                    hint="Pass full_feature_names=True to get view__feature columns.",
                )
            output.append(full if full_names else feat)
            internal.append(full)
        resolved = _Resolved(
            list(stored.values()),
            list(on_demand.values()),
            names,
            output,
            internal,
            fingerprints,
            records,
        )
        self._plans[key] = resolved  # type: ignore[index]
        return resolved

    def _add_inputs(
        self,
        defs: Definitions,
        view: OnDemandFeatureView,
        stored: dict[str, ViewRequest],
        fingerprints: dict[str, str],
        records: dict[str, VersionRecord],
    ) -> None:
        """Add the stored features an on-demand view reads, at the versions it reads."""
        fingerprints_of = {v.name: v.fingerprint() for v in view.sources}
        for src_ref in view.input_refs:
            sname, sfeat = src_ref.split(":")
            fingerprint = fingerprints_of[sname]
            known = next(
                (
                    r
                    for r in self.records()
                    if r["name"] == sname and r["fingerprint"] == fingerprint
                ),
                None,
            )
            srec = self._record(sname, None if known is None else known["version"], defs)
            skey = f"{sname}:v{srec['version']}"
            fingerprints[skey] = srec["fingerprint"]
            records[skey] = srec
            source_view = self._view(srec, defs)
            assert isinstance(source_view, FeatureView)
            sreq = stored.setdefault(skey, ViewRequest(source_view, int(srec["version"]), []))
            if sfeat not in sreq.features:
                sreq.features.append(sfeat)

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
        if not isinstance(entity_df, pd.DataFrame) or entity_df.empty:
            raise InvalidInput("entity_df must be a non-empty DataFrame of entity keys and times.")
        check.unique_columns(entity_df, "entity_df")
        _feature_refs(features)
        check.name(timestamp_column, "timestamp_column")
        check.boolean(full_feature_names, "full_feature_names")
        if run_id is not None:
            check.run_id(run_id)
        if not features:
            raise InvalidInput("Ask for at least one feature (view:feature).")
        plan = self.resolve(defs, features, full_names=full_feature_names)
        if timestamp_column not in entity_df.columns:
            raise InvalidInput(
                f"entity_df has no timestamp column {timestamp_column!r}.",
                hint="Name it event_timestamp or pass timestamp_column=...",
            )
        needed = {k for req in plan.stored for k in req.view.entity.join_keys}
        needed |= {f.name for v, _, _ in plan.on_demand for f in v.request_schema}
        missing = sorted(needed - set(entity_df.columns))
        if missing:
            raise InvalidInput(
                f"entity_df lacks column {missing[0]!r}, which the requested "
                "features need (join keys and request data).",
                hint="Columns needed: " + ", ".join(sorted(needed)) + ".",
            )
        import duckdb

        try:
            frame, lineage = self.offline.historical(
                entity_df,
                self._offline_requests(plan),
                timestamp_column=timestamp_column,
                names=plan.names,
                fingerprints=plan.fingerprints,
            )
        except duckdb.Error as exc:
            raise InvalidInput(
                f"The point-in-time join failed: {exc}",
                hint="Check that entity_df's join keys have the sources' types.",
            ) from exc
        frame = self._apply_on_demand(frame, plan)
        result = self._select(entity_df, frame, plan)
        self._record_retrieval(plan, lineage, result, run_id)
        return result

    def _offline_requests(self, plan: _Resolved) -> list[ViewRequest]:
        """The plan's stored requests as the offline store can serve them.

        A version whose transform's code is not loaded reads the rows its transform
        computed earlier when they are stored for the current source data; otherwise
        only the features its transform does not compute, straight from the source.

        Raises:
            InvalidInput: a requested feature needs code that is not loaded; the message
                names the version, the feature and the file that defined it.
        """
        out = []
        for req in plan.stored:
            transform = req.view.transform
            if (
                not isinstance(transform, StoredTransform)
                or transform.function is not None
                or self.offline.computed(req.view, plan.fingerprints[req.key])
            ):
                out.append(req)
                continue
            needs = [f for f in req.features if f in transform.derived]
            if needs:
                raise transform.missing(needs)
            plain = replace(
                req.view,
                schema=[f for f in req.view.schema if f.name in req.features],
                transform=None,
            )
            out.append(ViewRequest(plain, req.version, req.features))
        return out

    def _apply_on_demand(self, frame: pd.DataFrame, plan: _Resolved) -> pd.DataFrame:
        for view, _, _ in plan.on_demand:
            try:
                out = view.transform(frame.copy())
            except Exception as exc:
                raise InvalidInput(
                    f"On-demand view {view.name!r} failed: {type(exc).__name__}: {exc}"
                ) from exc
            missing = [f for f in view.features if f not in out.columns]
            if missing or len(out) != len(frame):
                raise InvalidInput(
                    f"On-demand view {view.name!r} must return one row per input with "
                    f"its features ({', '.join(view.features)})."
                )
            for feat in view.features:
                frame[f"{view.name}__{feat}"] = out[feat].to_numpy()
        return frame

    @staticmethod
    def _select(entity_df: pd.DataFrame, frame: pd.DataFrame, plan: _Resolved) -> pd.DataFrame:
        out = entity_df.reset_index(drop=True).copy()
        for name, column in zip(plan.output, plan.internal, strict=True):
            out[name] = frame[column].to_numpy()
        return out

    def _record_retrieval(
        self,
        plan: _Resolved,
        lineage: list[dict[str, Any]],
        result: pd.DataFrame,
        run_id: str | None,
    ) -> None:
        refs = [f"{r.key}:{f}" for r in plan.stored for f in r.features]
        refs += [f"{v.name}:v{ver}:{f}" for v, ver, feats in plan.on_demand for f in feats]
        self.registry.record_retrieval(
            {
                "retrieval_id": uuid.uuid4().hex,
                "run_id": run_id,
                "refs_json": json.dumps(refs),
                "sources_json": json.dumps(lineage, default=str),
                "num_rows": len(result),
                "created_by": self.actor,
                "created_at": int(time.time() * 1000),
            }
        )
        if run_id is not None:
            sample = result.sample(n=min(_SAMPLE_ROWS, len(result)), random_state=0)
            table = pa.Table.from_pandas(sample, preserve_index=False)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            self.tracking.log_bytes(
                run_id, sink.getvalue().to_pybytes(), "features/training_sample.parquet"
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
        _moment(start, "start", optional=True)
        _moment(end, "end")
        _materialize_options(views, progress)
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
        _moment(end, "end", optional=True)
        _materialize_options(views, progress)
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
        _view_name(view_name)
        _rows(rows, "rows")
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
                try:
                    packed = materialize_mod.pack_frame(view, run_transform(view, frame))
                except (TypeError, OverflowError) as exc:  # msgpack: a value it cannot hold
                    raise InvalidInput(
                        f"Feature view {view.name!r}: a pushed value cannot be stored: {exc}.",
                        hint="Push numbers that fit 64 bits, text, booleans or nulls.",
                    ) from exc
            self.online.write(f"{view.name}:v{rec['version']}", packed)
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
        _feature_refs(features)
        _rows(entity_rows, "entity_rows")
        check.boolean(full_feature_names, "full_feature_names")
        _moment(now, "now", optional=True)
        plan = self.resolve(defs, features, full_names=full_feature_names)
        self._check_held(plan, features)
        rows: list[dict[str, Any]] = (
            [{str(k): v for k, v in r.items()} for r in entity_rows.to_dict("records")]
            if isinstance(entity_rows, pd.DataFrame)
            else list(entity_rows)
        )
        if not rows:
            raise InvalidInput("entity_rows is empty.")
        now_ms = _ms(now) if now is not None else int(time.time() * 1000)
        values: dict[str, list[Any]] = {}
        statuses: dict[str, list[str]] = {}
        for req in plan.stored:
            self._read_view(req, rows, now_ms, plan, values, statuses)
        for view, _, feats in plan.on_demand:
            computed = self._on_demand_online(view, rows, values)
            for feat in feats:
                values[f"{view.name}__{feat}"] = [
                    None if isinstance(v, float) and math.isnan(v) else v
                    for v in computed[feat].tolist()
                ]
                statuses[f"{view.name}__{feat}"] = ["present"] * len(rows)
        return OnlineResponse(
            list(plan.output),
            {name: values[col] for name, col in zip(plan.output, plan.internal, strict=True)},
            {name: statuses[col] for name, col in zip(plan.output, plan.internal, strict=True)},
        )

    def _check_held(self, plan: _Resolved, asked: Sequence[str]) -> None:
        """Refuse a stored version the online store does not hold (checked once per plan,
        which lives as long as the cached records: no round trip per read)."""
        if not plan.records:  # request data only: the online store is not asked at all
            return
        if plan.unheld is None:
            holdings = self.holdings()
            plan.unheld = [r for r in plan.records.values() if not holdings.holds(r)]
        if plan.unheld:
            raise self.holdings().refusal(plan.unheld[0], self.records(), asked)

    def _read_view(
        self,
        req: ViewRequest,
        rows: list[dict[str, Any]],
        now_ms: int,
        plan: _Resolved,
        values: dict[str, list[Any]],
        statuses: dict[str, list[str]],
    ) -> None:
        """One point lookup per entity batch; values older than the TTL come back null."""
        keys = req.view.entity.join_keys
        try:
            ekeys = [online_mod.entity_key([r[k] for k in keys]) for r in rows]
        except KeyError as exc:
            raise InvalidInput(
                f"An entity row lacks join key {exc.args[0]!r} of {req.view.entity.name!r}."
            ) from None
        packed = self.online.read(req.key, ekeys)
        ttl_ms = req.view.ttl.total_seconds() * 1000
        index = [req.view.features.index(f) for f in req.features]
        cols: list[list[Any]] = [[] for _ in index]
        stats: list[list[str]] = [[] for _ in index]
        for raw in packed:
            if raw is None:
                for c, st in zip(cols, stats, strict=True):
                    c.append(None)
                    st.append("missing")
                continue
            event_ts, _, vals = online_mod.unpack(raw)
            expired = now_ms - event_ts > ttl_ms
            for j, c, st in zip(index, cols, stats, strict=True):
                c.append(None if expired else vals[j])
                st.append("expired" if expired else "present")
        for feat, c, st in zip(req.features, cols, stats, strict=True):
            values[plan.names[(req.key, feat)]] = c
            statuses[plan.names[(req.key, feat)]] = st

    @staticmethod
    def _on_demand_online(
        view: OnDemandFeatureView, rows: list[dict[str, Any]], values: dict[str, list[Any]]
    ) -> pd.DataFrame:
        """Run an on-demand transform on request data plus the stored inputs just read."""
        frame = pd.DataFrame(rows)
        for f in view.request_schema:
            if f.name not in frame.columns:
                raise InvalidInput(f"On-demand view {view.name!r} needs request data {f.name!r}.")
        for src in view.sources:
            dtypes = {f.name: f.dtype for f in src.schema}
            for feat in src.features:
                col = f"{src.name}__{feat}"
                column = values.get(col, [None] * len(rows))
                # the same dtypes the offline path hands the transform (nulls as NaN)
                frame[col] = (
                    pd.to_numeric(pd.Series(column, dtype="object"))
                    if dtypes[feat] in ("float", "int")
                    else column
                )
        try:
            out = view.transform(frame.copy())
        except Exception as exc:
            raise InvalidInput(
                f"On-demand view {view.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        missing = [f for f in view.features if f not in out.columns]
        if missing or len(out) != len(frame):
            raise InvalidInput(
                f"On-demand view {view.name!r} must return one row per input "
                f"with its features ({', '.join(view.features)})."
            )
        return out

    # -- consistency --------------------------------------------------------------------------

    def check_consistency(
        self, defs: Definitions, view_ref: str, *, sample: int = 100, now: datetime | None = None
    ) -> ConsistencyReport:
        """Compare online values with offline point-in-time values at the same moment."""
        _view_ref(view_ref)
        check.integer(sample, "sample", minimum=1, maximum=_MAX_SAMPLE)
        _moment(now, "now", optional=True)
        return consistency.check_consistency(self, defs, view_ref, sample=sample, now=now)

    def online_entities(self, defs: Definitions, view_ref: str, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` random entity keys that have rows online in a view."""
        name, version = _view_ref(view_ref)
        check.integer(n, "n", minimum=1, maximum=_MAX_SAMPLE)
        rec = self._record(name, version, defs)
        view = self._view(rec, defs)
        if not isinstance(view, FeatureView):
            raise InvalidInput(f"{name!r} is on-demand: it has no rows of its own online.")
        if not self.holdings().holds(rec):
            raise self.holdings().refusal(rec, self.records(), [view_ref])
        ekeys = self.online.sample(f"{name}:v{rec['version']}", n)
        return [dict(zip(view.entity.join_keys, decode_key(k), strict=True)) for k in ekeys]

    # -- serving --------------------------------------------------------------------------

    def serving_reader(self, refs: Sequence[str]) -> ServingReader:
        """Online reads of pinned ``view:vN:feature`` refs, without the repository's code.

        Transforms ran when rows were written, so reading needs only keys, TTL and
        schema, which the registry holds.

        Raises:
            InvalidInput: a ref is unversioned, on-demand, retired or never materialized.
        """
        requests: dict[str, ViewRequest] = {}
        holdings = self.holdings(fresh=True)  # reads the records afresh too
        records = {(r["name"], r["version"]): r for r in self.records()}
        for ref in refs:
            name, version, feat = _parse_ref(ref)
            rec = records.get((name, version)) if version is not None else None
            if rec is None or version is None:
                raise InvalidInput(f"Pinned feature {ref!r} is not a registered view:vN:feature.")
            if rec["definition"].get("kind") != "feature_view":
                raise InvalidInput(
                    f"{ref} is on-demand: serving it needs the feature repository's "
                    "code, which the model server does not load.",
                    hint="Compute it in the client, or pin stored features only.",
                )
            if rec["status"] != "active":
                raise InvalidInput(f"{name}:v{version} is retired; the model cannot be served.")
            if rec["materialized_until"] is None:
                raise InvalidInput(
                    f"The model pins {name}:v{version}, which was never materialized to the online "
                    "store.",
                    hint="Run `milepost features materialize` before deploying.",
                )
            if not holdings.holds(rec):
                raise InvalidInput(
                    f"The model pins {name}:v{version}, which is not materialized into the "
                    f"current online store ({holdings.store_uri}): it was materialized "
                    "into another store, or this one lost its data.",
                    hint="Run `milepost features materialize --incremental` before deploying.",
                )
            key = f"{name}:v{version}"
            view = versions.from_definition(rec)  # reads need no transform: rows are stored
            req = requests.setdefault(key, ViewRequest(view, int(version), []))
            if feat not in req.features:
                req.features.append(feat)
        return ServingReader(self, list(requests.values()))

    def flush(self) -> None:
        """Write buffered pushes to the offline store."""
        self.pushes.flush()

    def close(self) -> None:
        """Flush pushes and close the online store."""
        self.pushes.close()
        if self._online is not None:
            self._online.close()


_MAX_SAMPLE = 100_000


def _view_name(name: object) -> str:
    return check.name(name, "Feature view name", max_length=128)


def _version_part(text: str) -> int | None:
    """``vN`` as N (1 to a 64-bit integer's maximum), else None."""
    digits = text[1:]
    if text.startswith("v") and digits.isascii() and digits.isdigit():
        number = int(digits)
        if 1 <= number <= check.INT64_MAX:
            return number
    return None


def _view_ref(ref: object) -> tuple[str, int | None]:
    """``view`` or ``view:vN`` -> (view, N or None)."""
    text = check.name(ref, "Feature view", max_length=160)
    name, sep, version = text.partition(":")
    if not sep:
        return _view_name(name), None
    number = _version_part(version)
    if number is None:
        raise InvalidInput(
            f"Feature view {check.short_repr(text)} is not VIEW or VIEW:vN "
            f"(N at least 1 and at most {check.INT64_MAX})."
        )
    return _view_name(name), number


def _feature_refs(refs: object) -> list[str]:
    """A list of ``view:feature`` refs (each is checked when first parsed, not per read)."""
    return check.string_list(refs, "features")


def _rows(rows: object, what: str) -> None:
    """A DataFrame or a list of row dicts, with unique column names."""
    if isinstance(rows, pd.DataFrame):
        check.unique_columns(rows, what)
        return
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, dict) for r in rows):
        raise InvalidInput(
            f"{what} must be a DataFrame or a list of row dicts, got "
            f"{check.short_repr(rows)} ({type(rows).__name__}).",
            hint='For example [{"customer_id": 7}].',
        )


def _moment(value: object, what: str, *, optional: bool = False) -> None:
    """A datetime that a timestamp can hold (naive ones are UTC)."""
    if value is None and optional:
        return
    if not isinstance(value, datetime):
        raise InvalidInput(
            f"{what} must be a datetime, got {check.short_repr(value)} ({type(value).__name__}).",
            hint="For example datetime(2026, 1, 31, tzinfo=UTC).",
        )
    try:
        pd.Timestamp(value).as_unit("ns")
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"{what} {value} is out of range ({exc}).",
            hint="Times from 1677 to 2262 can be stored.",
        ) from None


def _materialize_options(views: object, progress: object) -> None:
    if views is not None:
        for name in check.string_list(views, "views"):
            _view_name(name)
    if progress is not None and not callable(progress):
        raise InvalidInput(
            f"progress must be a function (view, rows), got {type(progress).__name__}."
        )


def _parse_ref(ref: str) -> tuple[str, int | None, str]:
    """``view:feature`` or ``view:vN:feature`` -> (view, N or None, feature)."""
    check.name(ref, "Feature reference", max_length=400)
    parts = ref.split(":")
    if len(parts) == 2:
        return parts[0], None, parts[1]
    if len(parts) == 3 and _version_part(parts[1]) is not None:
        return parts[0], _version_part(parts[1]), parts[2]
    raise InvalidInput(f"Feature reference {ref!r} is not view:feature or view:vN:feature.")
