"""Online reads: the latest stored values per entity row, and on-demand features on them.

The per-call work is kept to what a read needs: the refs resolve once into a
:class:`~milepost.features.resolve.Plan` (cached), whose
:class:`~milepost.features.resolve.ViewRead` says, per stored view version, the key,
the join keys, the TTL and where each feature sits in the stored row. A read then
builds the entity keys, does one point lookup per view version and unpacks the rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import msgpack
import pandas as pd

from milepost import _validate as check
from milepost.errors import InvalidInput
from milepost.features.offline import run_on_demand
from milepost.features.online import entity_key
from milepost.features.refs import check_feature_refs, check_moment, check_rows

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from milepost.features.definitions import OnDemandFeatureView
    from milepost.features.online import OnlineStore
    from milepost.features.repo import Definitions
    from milepost.features.resolve import Plan, ViewRead
    from milepost.features.service import FeatureService

__all__ = ["OnlineResponse", "get_online_features", "read_stored"]

PRESENT, EXPIRED, MISSING = "present", "expired", "missing"
_unpackb = msgpack.unpackb
_event_ts, _values = itemgetter(0), itemgetter(2)  # of an unpacked row
_INT, _DICT = {int}, {dict}


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


def get_online_features(
    service: FeatureService,
    defs: Definitions,
    features: Sequence[str],
    entity_rows: Sequence[dict[str, Any]] | pd.DataFrame,
    *,
    full_feature_names: bool = False,
    now: datetime | None = None,
) -> OnlineResponse:
    """The latest values per entity row, honouring each view's TTL (see
    :meth:`FeatureService.get_online_features`)."""
    plan = _cached_plan(service, defs, features, full_feature_names)
    if plan is None:  # not asked before: check everything, then resolve
        check_feature_refs(features)
        check_rows(entity_rows, "entity_rows")
        check.boolean(full_feature_names, "full_feature_names")
        check_moment(now, "now", optional=True)
        plan = service.resolve(defs, features, full_names=full_feature_names)
    if plan.unheld is None or plan.unheld:
        check_held(service, plan, features)
    if type(entity_rows) is list and set(map(type, entity_rows)) == _DICT:
        rows: list[dict[str, Any]] = entity_rows
    else:
        check_rows(entity_rows, "entity_rows")
        rows = (
            [{str(k): v for k, v in r.items()} for r in entity_rows.to_dict("records")]
            if isinstance(entity_rows, pd.DataFrame)
            else list(entity_rows)
        )
    if not rows:
        raise InvalidInput("entity_rows is empty.")
    if now is None:
        now_ms = int(time.time() * 1000)
    else:
        check_moment(now, "now")
        now_ms = int(pd.Timestamp(now).value // 1_000_000)
    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[str]] = {}
    read_stored(service.online, plan.reads, rows, now_ms, values, statuses)
    if plan.direct:  # already under the output names, in order
        return OnlineResponse(list(plan.output), values, statuses)
    for view, _, feats in plan.on_demand:
        computed = _on_demand(view, rows, values)
        for feat in feats:
            values[f"{view.name}__{feat}"] = [
                None if isinstance(v, float) and math.isnan(v) else v
                for v in computed[feat].tolist()
            ]
            statuses[f"{view.name}__{feat}"] = [PRESENT] * len(rows)
    return OnlineResponse(
        list(plan.output),
        {name: values[col] for name, col in plan.pairs},
        {name: statuses[col] for name, col in plan.pairs},
    )


def _cached_plan(
    service: FeatureService, defs: Definitions, features: object, full_names: object
) -> Plan | None:
    """The plan of refs asked before (they were checked then), else None."""
    if (type(features) is list or type(features) is tuple) and (
        full_names is True or full_names is False
    ):
        try:
            return service.resolver.cached(defs, tuple(features), full_names)
        except TypeError:  # an unhashable item: not refs, the full check says why
            return None
    return None


def check_held(service: FeatureService, plan: Plan, asked: Sequence[str]) -> None:
    """Refuse a stored version the online store does not hold (checked once per plan,
    which lives as long as the cached records: no round trip per read)."""
    if not plan.records:  # request data only: the online store is not asked at all
        return
    if plan.unheld is None:
        holdings = service.holdings()
        plan.unheld = [r for r in plan.records.values() if not holdings.holds(r)]
    if plan.unheld:
        raise service.holdings().refusal(plan.unheld[0], service.records(), asked)


def read_stored(
    online: OnlineStore,
    reads: Sequence[ViewRead],
    rows: list[dict[str, Any]],
    now_ms: int,
    values: dict[str, list[Any]],
    statuses: dict[str, list[str]],
) -> None:
    """One lookup per view version for the rows; values older than the TTL come back
    null. Fills ``values`` and ``statuses`` by internal column."""
    for vr in reads:
        packed = online.read(vr.key, _entity_keys(vr, rows))
        if len(packed) == 1:  # the common serving case, without the per-row lists
            _fill_one(vr, packed[0], now_ms, values, statuses)
        else:
            _fill_batch(vr, packed, now_ms, values, statuses)


def _entity_keys(vr: ViewRead, rows: list[dict[str, Any]]) -> list[str]:
    """The stored entity key of each row for a view version."""
    keys = vr.join_keys
    try:
        if len(keys) == 1:
            ids = list(map(itemgetter(keys[0]), rows))
            if set(map(type, ids)) == _INT:  # entity_key of ints, without the calls
                return [f"n:{v!r}" for v in ids]
            return [entity_key((v,)) for v in ids]
        return [entity_key([r[k] for k in keys]) for r in rows]
    except KeyError as exc:
        raise InvalidInput(
            f"An entity row lacks join key {exc.args[0]!r} of {vr.entity!r}."
        ) from None


def _fill_one(
    vr: ViewRead,
    raw: bytes | None,
    now_ms: int,
    values: dict[str, list[Any]],
    statuses: dict[str, list[str]],
) -> None:
    if raw is None:
        for col in vr.columns:
            values[col] = [None]
            statuses[col] = [MISSING]
        return
    event_ts, _, vals = _unpackb(raw)
    if now_ms - event_ts > vr.ttl_ms:
        for col in vr.columns:
            values[col] = [None]
            statuses[col] = [EXPIRED]
        return
    for j, col in zip(vr.index, vr.columns, strict=True):
        values[col] = [vals[j]]
        statuses[col] = [PRESENT]


def _fill_batch(
    vr: ViewRead,
    packed: list[bytes | None],
    now_ms: int,
    values: dict[str, list[Any]],
    statuses: dict[str, list[str]],
) -> None:
    """The columns of several rows: unpacked and transposed in C calls (``map``, ``zip``),
    with a Python loop per row only when some row is missing or expired."""
    n = len(packed)
    ttl_ms = vr.ttl_ms
    decoded: list[Any]
    if None not in packed:
        decoded = list(map(_unpackb, packed))
        if now_ms - min(map(_event_ts, decoded)) <= ttl_ms:  # all there, all fresh
            by_feature = list(zip(*map(_values, decoded), strict=True))
            for j, col in zip(vr.index, vr.columns, strict=True):
                values[col] = list(by_feature[j])
                statuses[col] = [PRESENT] * n
            return
    else:
        decoded = [None if raw is None else _unpackb(raw) for raw in packed]
    row_status = [
        MISSING if d is None else EXPIRED if now_ms - d[0] > ttl_ms else PRESENT for d in decoded
    ]
    nulls = [None] * vr.width
    by_feature = list(
        zip(
            *[d[2] if s is PRESENT else nulls for d, s in zip(decoded, row_status, strict=True)],
            strict=True,
        )
    )
    for j, col in zip(vr.index, vr.columns, strict=True):
        values[col] = list(by_feature[j])
        statuses[col] = row_status.copy()


def _on_demand(
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
    return run_on_demand(view, frame)
