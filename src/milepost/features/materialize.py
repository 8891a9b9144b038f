"""Materialization: the newest feature rows into the online store, and what each store holds.

A watermark belongs to one online store. Each store keeps its own identity (a random id,
its creation time, a revision that every materialization counts up; see
:mod:`milepost.features.online`), and the metadata store records, per view version and
store id, the event-time intervals written into that store. So:

- a store with no identity (new, a Redis restarted empty, a deleted SQLite file) or
  another identity (the online URI was switched) holds nothing the metadata recorded, and
  an incremental run refills its view's TTL window;
- a store whose revision is lower than one recorded for it went back in time (restored
  from an older snapshot): it gets a new identity, and everything is refilled;
- a ranged ``materialize START END`` records only ``[START, END)``, so a later
  incremental run also fills what lies before the range.

Every run says per view what it wrote and why (:class:`ViewMaterialization`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from milepost.errors import InvalidInput, mask_uri
from milepost.features.definitions import FeatureView
from milepost.features.intervals import Interval, merge, subtract
from milepost.features.packing import pack_frame

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from milepost.features import online as online_mod
    from milepost.features.backends.sql import VersionRecord, Watermark
    from milepost.features.repo import Definitions
    from milepost.features.service import FeatureService

__all__ = [
    "Materialization",
    "OnlineCoverage",
    "ViewMaterialization",
    "materialize",
    "materialize_incremental",
    "online_status",
    "pack_frame",
]

TimeRange = tuple[datetime | None, datetime]
_INCREMENTAL = "`milepost features materialize --incremental`"


def _ms(moment: datetime) -> int:
    ts = pd.Timestamp(moment)
    ts = ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")
    return int(ts.value // 1_000_000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _times(intervals: Sequence[Interval]) -> list[TimeRange]:
    return [(None if s is None else _at(s), _at(e)) for s, e in intervals]


def _fmt(ms: int | None) -> str:
    if ms is None:
        return "the beginning of the data"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(interval: Interval) -> str:
    return f"{_fmt(interval[0])} to {_fmt(interval[1])}"


@dataclass(frozen=True)
class ViewMaterialization:
    """What one run wrote for one view version into the online store, and why."""

    view: str
    rows: int
    written: list[TimeRange]
    reason: str
    holds: list[TimeRange]  # what the store holds of the version afterwards
    recorded: bool = True

    def __repr__(self) -> str:
        return f"ViewMaterialization({self.view}, {self.rows:,} rows: {self.reason})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "view": self.view,
            "rows": self.rows,
            "written": [[_iso(s), _iso(e)] for s, e in self.written],
            "reason": self.reason,
            "holds": [[_iso(s), _iso(e)] for s, e in self.holds],
            "recorded": self.recorded,
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


class Materialization(dict[str, int]):
    """Rows written per view version (``{"view:vN": rows}``); ``details`` says what and why.

    Attributes:
        details: a :class:`ViewMaterialization` per view version.
        store_id: the online store's identity the rows were recorded against.
        store_uri: the online store (password masked).
    """

    def __init__(self, store_id: str, store_uri: str) -> None:
        super().__init__()
        self.details: dict[str, ViewMaterialization] = {}
        self.store_id = store_id
        self.store_uri = store_uri

    def add(self, detail: ViewMaterialization) -> None:
        """Record one view version's outcome."""
        self[detail.view] = detail.rows
        self.details[detail.view] = detail

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{view: {rows, written, reason, holds, recorded}}``."""
        return {k: d.to_dict() for k, d in self.details.items()}

    def __repr__(self) -> str:
        views = ", ".join(f"{k} {v:,} rows" for k, v in self.items())
        return f"Materialization({views or 'nothing'} into {self.store_uri})"


@dataclass(frozen=True)
class OnlineCoverage:
    """Whether the current online store holds a view version's rows, and up to when."""

    view: str
    store_id: str | None  # None: the store has no identity (never materialized into)
    store_uri: str
    intervals: list[TimeRange]
    ttl_seconds: float | None
    elsewhere: list[dict[str, Any]] = field(default_factory=list)  # other stores' watermarks

    def __repr__(self) -> str:
        return f"OnlineCoverage({self.view}: {self.describe()})"

    @property
    def through_ms(self) -> int | None:
        """The end of the newest interval the store holds (ms), or None."""
        return _ms(self.intervals[-1][1]) if self.intervals else None

    def describe(self) -> str:
        """One line: ``through T``, what is missing, or ``never materialized into this store``."""
        if self.ttl_seconds is None:
            return "computed at request time"
        if not self.intervals:
            text = "never materialized into this store"
            if self.elsewhere:
                other = self.elsewhere[0]
                text += f" (another store through {_fmt(other['materialized_until'])})"
            return text
        held = [(None if s is None else _ms(s), _ms(e)) for s, e in self.intervals]
        through = held[-1][1]
        window = (through - int(self.ttl_seconds * 1000), through)
        gaps = subtract(window, held)
        if not gaps:
            return f"through {_fmt(through)}"
        return (
            f"through {_fmt(through)}; missing {', '.join(_span(g) for g in gaps)} "
            f"(run {_INCREMENTAL})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "view": self.view,
            "store_id": self.store_id,
            "store_uri": self.store_uri,
            "intervals": [[_iso(s), _iso(e)] for s, e in self.intervals],
            "materialized_until": _iso(self.intervals[-1][1]) if self.intervals else None,
            "state": self.describe(),
        }


# -- the store's epoch ------------------------------------------------------------------------


@dataclass
class _Epoch:
    """The online store as this run sees it: its identity and what the metadata says."""

    identity: online_mod.StoreIdentity
    uri: str
    note: str | None  # why the store starts empty: None (known store), or a sentence
    marks: list[Watermark]

    def held(self, name: str, version: int) -> list[Interval]:
        for m in self.marks:
            if (m.name, m.version, m.store_id) == (name, version, self.identity.store_id):
                return list(m.intervals)
        return []

    def elsewhere(self, name: str, version: int) -> list[Watermark]:
        return [
            m
            for m in self.marks
            if (m.name, m.version) == (name, version) and m.store_id != self.identity.store_id
        ]


def _open_epoch(service: FeatureService) -> _Epoch:
    """The store's identity (created when it has none; replaced when it went back in time)."""
    store = service.online
    uri = mask_uri(store.uri)
    ident = store.identity()
    recorded = None
    if ident is not None:
        # read the store again after the recorded maximum: every revision recorded by then
        # was counted in the store first, so only a store that went back is lower
        recorded = service.registry.max_revision(ident.store_id)
        again = store.identity()
        if again is not None and again.store_id != ident.store_id:
            recorded = service.registry.max_revision(again.store_id)
        ident = again
    note = None
    if ident is None:
        ident = store.claim_identity()
        note = (
            f"new epoch {ident.store_id[:8]}: the store had no identity, so it is new or "
            "lost its data, e.g. restarted empty or its file deleted"
        )
    elif recorded is not None and ident.revision < recorded:
        old = ident
        ident = store.claim_identity(replacing=old.store_id)
        note = (
            f"new epoch {ident.store_id[:8]}: the store is older than the metadata recorded, "
            f"revision {old.revision} < {recorded}, e.g. restored from an older snapshot"
        )
    return _Epoch(ident, uri, note, service.registry.watermarks())


# -- writing ------------------------------------------------------------------------------------


def _naive(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms")


def _write(
    service: FeatureService,
    epoch: _Epoch,
    rec: VersionRecord,
    view: FeatureView,
    gaps: list[Interval],
    reason: str,
    progress: Callable[[str, int], None] | None,
) -> ViewMaterialization:
    """Write the newest row per entity of each gap, then record the gaps for this store."""
    vkey = f"{rec.name}:v{rec.version}"
    total = 0
    for start, end in gaps:
        for batch in service.offline.latest_rows(
            view,
            rec.fingerprint,
            start=None if start is None else _naive(start),
            end=_naive(end),
        ):
            frame = batch.to_pandas()
            frame = frame.rename(columns={"__mp_ts": view.timestamp_field})
            if view.created_timestamp_field:
                frame = frame.rename(columns={"__mp_created": view.created_timestamp_field})
            total += service.online.write(vkey, pack_frame(view, frame))
            if progress:
                progress(vkey, total)
    revision = service.online.bump_revision(epoch.identity.store_id)
    if revision is None:  # the store lost its identity while we wrote: record nothing
        return ViewMaterialization(
            vkey,
            total,
            _times(gaps),
            f"the online store was reset while this ran (its identity changed); nothing was "
            f"recorded, so run {_INCREMENTAL} again",
            [],
            recorded=False,
        )
    holds = service.registry.record_materialization(
        rec.name,
        rec.version,
        store_id=epoch.identity.store_id,
        store_uri=epoch.uri,
        written=gaps,
        revision=revision,
        actor=service.actor,
    )
    return ViewMaterialization(vkey, total, _times(gaps), reason, _times(holds))


def _stored(service: FeatureService, defs: Definitions, name: str) -> tuple[Any, FeatureView]:
    """The version of ``name`` the definitions are, or ``view:vN`` (an older version,
    e.g. one a model still pins: computed with the loaded code of its fingerprint)."""
    view_name, _, version = name.partition(":")
    if version and not (version.startswith("v") and version[1:].isdigit()):
        raise InvalidInput(f"View {name!r} is not VIEW or VIEW:vN.")
    rec = service._record(view_name, int(version[1:]) if version else None, defs)
    view = service._view(rec, defs)
    if not isinstance(view, FeatureView):
        raise InvalidInput(f"{name!r} is on-demand: it is computed at request time, not stored.")
    return rec, view


def _names(defs: Definitions, views: Sequence[str] | None) -> list[str]:
    return list(views or [n for n, v in defs.views.items() if isinstance(v, FeatureView)])


def _empty_store(epoch: _Epoch, name: str, version: int) -> str:
    """Why this store holds none of a version's rows."""
    text = "this store holds none of its rows"
    if epoch.note:
        return f"{text} ({epoch.note})"
    others = epoch.elsewhere(name, version)
    if others:
        return (
            f"{text} (it was materialized into {others[0].store_uri} through "
            f"{_fmt(others[0].materialized_until)})"
        )
    return text


def materialize(
    service: FeatureService,
    defs: Definitions,
    *,
    start: datetime | None,
    end: datetime,
    views: Sequence[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Materialization:
    """Load the newest row per entity in ``[start, end)`` (start None: from the beginning)."""
    end_ms = _ms(end)
    start_ms = None if start is None else _ms(start)
    if start_ms is not None and start_ms >= end_ms:
        raise InvalidInput(f"materialize: start {start} is not before end {end}.")
    names = _names(defs, views)
    stored = [_stored(service, defs, n) for n in names]
    epoch = _open_epoch(service)
    out = Materialization(epoch.identity.store_id, epoch.uri)
    for rec, view in stored:
        version = rec.version
        reason = f"the range asked for, {_span((start_ms, end_ms))}"
        if not epoch.held(rec.name, version):
            reason += f"; {_empty_store(epoch, rec.name, version)}"
        out.add(_write(service, epoch, rec, view, [(start_ms, end_ms)], reason, progress))
    return out


def materialize_incremental(
    service: FeatureService,
    defs: Definitions,
    *,
    end: datetime | None = None,
    views: Sequence[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Materialization:
    """Write what this store lacks of each version's TTL window before ``end`` (now)."""
    end_ms = _ms(end or datetime.now(UTC))
    names = _names(defs, views)
    stored = [_stored(service, defs, n) for n in names]
    epoch = _open_epoch(service)
    out = Materialization(epoch.identity.store_id, epoch.uri)
    for rec, view in stored:
        name, version = rec.name, rec.version
        held = epoch.held(name, version)
        window: Interval = (end_ms - int(view.ttl.total_seconds() * 1000), end_ms)
        gaps = subtract(window, held)
        vkey = f"{name}:v{version}"
        if not gaps:
            out.add(
                ViewMaterialization(
                    vkey,
                    0,
                    [],
                    f"already materialized through {_fmt(max(e for _, e in held))} "
                    "in this store; nothing to write",
                    _times(held),
                )
            )
            continue
        if not held:
            verb = "refilled" if epoch.elsewhere(name, version) or epoch.note else "filled"
            reason = (
                f"{_empty_store(epoch, name, version)}; {verb} from {_fmt(window[0])} "
                f"(its TTL window) to {_fmt(end_ms)}"
            )
        else:
            reason = _gap_reason(held, gaps)
        out.add(_write(service, epoch, rec, view, gaps, reason, progress))
    return out


def _gap_reason(held: list[Interval], gaps: list[Interval]) -> str:
    """Which parts were missing: before what the store held, between, or after it."""
    first = held[0][0]
    last = held[-1][1]
    parts = []
    for gap in gaps:
        if first is not None and gap[1] <= first:
            parts.append(f"{_span(gap)}, before what this store held (from {_fmt(first)})")
        elif gap[0] is not None and gap[0] >= last:
            parts.append(f"{_span(gap)}, from the watermark")
        else:
            parts.append(f"{_span(gap)}, a gap in what this store held")
    return "; ".join(parts)


# -- status -------------------------------------------------------------------------------------


def online_status(
    service: FeatureService, records: Sequence[VersionRecord]
) -> list[OnlineCoverage]:
    """Per version: what the current online store holds of it (one store read)."""
    store = service.online
    ident = store.identity()
    marks = service.registry.watermarks()
    out = []
    for rec in records:
        name, version = rec.name, rec.version
        mine = [
            m
            for m in marks
            if (m.name, m.version) == (name, version)
            and ident is not None
            and m.store_id == ident.store_id
        ]
        others = [
            {
                "store_id": m.store_id,
                "store_uri": m.store_uri,
                "materialized_until": m.materialized_until,
                "updated_at": m.updated_at,
            }
            for m in marks
            if (m.name, m.version) == (name, version) and m not in mine
        ]
        ttl = rec.definition.get("ttl_seconds") if rec.kind == "feature_view" else None
        out.append(
            OnlineCoverage(
                f"{name}:v{version}",
                None if ident is None else ident.store_id,
                mask_uri(store.uri),
                _times(merge(list(mine[0].intervals))) if mine else [],
                None if ttl is None else float(ttl),
                others,
            )
        )
    return out
