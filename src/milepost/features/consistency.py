"""Online values against offline point-in-time values: do serving and training agree?"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from milepost._records import record_dict
from milepost.errors import InvalidInput
from milepost.features.definitions import FeatureView
from milepost.features.refs import view_ref as parse_view_ref

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from milepost.features.repo import Definitions
    from milepost.features.service import FeatureService

__all__ = [
    "ABS_TOL",
    "MAX_EXAMPLES",
    "REL_TOL",
    "ConsistencyReport",
    "check_consistency",
    "decode_key",
    "online_entities",
    "plain",
    "values_agree",
]

#: Two numbers agree when ``|a - b| <= max(REL_TOL * max(|a|, |b|), ABS_TOL)``
#: (:func:`math.isclose`): a transform computed twice may differ in the last bits
#: (float32 arithmetic, summation order), never by a millionth of the value.
REL_TOL = 1e-6
ABS_TOL = 1e-9
#: Mismatching values kept as examples per report.
MAX_EXAMPLES = 10


@dataclass
class ConsistencyReport:
    """Online values against offline point-in-time values, per feature.

    ``checked`` entity rows at ``at``, ``with_values`` of them with a value online;
    ``mismatches`` counts the rows whose values differ, per feature; ``examples`` (up
    to :data:`MAX_EXAMPLES`) hold the ``entity`` (its join keys, and an on-demand view's
    request data), the ``feature`` and both values.
    """

    view: str
    checked: int
    at: str
    mismatches: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    #: ``feature_view`` or ``on_demand``
    kind: str = "feature_view"
    #: rows with at least one value online (the others are null on both paths when they
    #: agree: a check where none has a value compared nothing but nulls)
    with_values: int = 0

    @property
    def ok(self) -> bool:
        """True when every sampled value agrees."""
        return not any(self.mismatches.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``ok``)."""
        return record_dict(self, extra={"ok": self.ok})

    def __repr__(self) -> str:
        bad = sum(self.mismatches.values())
        verdict = "consistent" if self.ok else f"{bad} mismatches"
        return f"ConsistencyReport({self.view}: {self.checked} checked, {verdict})"


def check_consistency(
    service: FeatureService,
    defs: Definitions,
    view_ref: str,
    *,
    sample: int = 100,
    now: datetime | None = None,
    rows: Sequence[Mapping[str, Any]] | None = None,
) -> ConsistencyReport:
    """Compare online values with offline point-in-time values at the same moment.

    The online path is read as serving reads it: one :meth:`get_online_features` call
    per entity row, so an on-demand transform that reads the batch it is given (a
    column's ``.mean()``) sees one row online and every row offline, and disagrees. The
    offline path is one :meth:`get_historical_features` call with the same rows, all at
    ``now``. Values agree as :func:`values_agree` says.

    Args:
        view_ref: ``VIEW`` or ``VIEW:vN``, a feature view or an on-demand view.
        sample: the most entity rows to compare.
        now: the moment of both reads (default now). Online rows newer than it would be
            served anyway, so it should not be earlier than what was materialized.
        rows: the entity rows (join keys; an on-demand view's request columns too);
            default: up to ``sample`` entities sampled from the online store (a feature
            view only: an on-demand view needs request data).

    Raises:
        Conflict: the online store does not hold the version (or, for an on-demand
            view, a view it reads); there is nothing to compare.
        InvalidInput: an on-demand view without ``rows``, or rows lacking a column.
    """
    name, _, version = view_ref.partition(":")
    rec = service.resolver.record(name, int(version[1:]) if version else None, defs)
    view = service.resolver.view(rec, defs)
    vkey = rec.key
    moment = now or datetime.now(UTC)
    if isinstance(view, FeatureView):
        keys = list(view.entity.join_keys)
        if not service.holdings().holds(rec):  # else every sampled value would agree: none
            raise service.holdings().refusal(rec, service.records(), [view_ref])
    else:
        keys = [k for src in view.sources[:1] for k in src.entity.join_keys]
        keys += [f.name for f in view.request_schema]
    if rows is None:
        if not isinstance(view, FeatureView):
            raise InvalidInput(
                f"{name!r} is an on-demand view: comparing it needs entity rows with its "
                f"request data ({', '.join(f.name for f in view.request_schema)}).",
                hint="`milepost check consistency` takes them from the project's labels "
                "dataset; from Python, pass rows=[...].",
            )
        ekeys = service.online.sample(vkey, sample)
        picked = [dict(zip(keys, decode_key(k), strict=True)) for k in ekeys]
    else:
        picked = [_row(r, keys, name) for r in list(rows)[:sample]]
    report = ConsistencyReport(
        vkey,
        len(picked),
        moment.isoformat(),
        dict.fromkeys(view.features, 0),
        kind="feature_view" if isinstance(view, FeatureView) else "on_demand",
    )
    if not picked:
        return report
    refs = [f"{vkey}:{f}" for f in view.features]
    online = [
        service.get_online_features(defs, refs, [row], now=moment, full_feature_names=True)
        for row in picked
    ]
    entity_df = pd.DataFrame(picked)
    entity_df["__mp_at"] = pd.Timestamp(moment)
    offline = service.get_historical_features(
        defs, entity_df, refs, timestamp_column="__mp_at", full_feature_names=True
    )
    report.with_values = sum(
        any(plain(response.values[f"{name}__{feat}"][0]) is not None for feat in view.features)
        for response in online
    )
    for feat in view.features:
        col = f"{name}__{feat}"
        served = [response.values[col][0] for response in online]
        for i, (a, b) in enumerate(zip(served, offline[col].tolist(), strict=True)):
            if not values_agree(a, b):
                report.mismatches[feat] += 1
                if len(report.examples) < MAX_EXAMPLES:
                    report.examples.append(
                        {
                            "entity": picked[i],
                            "feature": feat,
                            "online": plain(a),
                            "offline": plain(b),
                        }
                    )
    return report


def _row(row: Mapping[str, Any], keys: list[str], view: str) -> dict[str, Any]:
    missing = [k for k in keys if k not in row]
    if missing:
        raise InvalidInput(
            f"An entity row for {view!r} lacks {', '.join(map(repr, missing))}.",
            hint=f"Each row needs {', '.join(keys)}.",
        )
    return {k: plain(row[k]) for k in keys}


def online_entities(
    service: FeatureService, defs: Definitions, view_ref: str, n: int
) -> list[dict[str, Any]]:
    """Up to ``n`` random entity keys that have rows online in a view (``view[:vN]``)."""
    name, version = parse_view_ref(view_ref)
    rec = service.resolver.record(name, version, defs)
    view = service.resolver.view(rec, defs)
    if not isinstance(view, FeatureView):
        raise InvalidInput(f"{name!r} is on-demand: it has no rows of its own online.")
    if not service.holdings().holds(rec):
        raise service.holdings().refusal(rec, service.records(), [view_ref])
    ekeys = service.online.sample(rec.key, n)
    return [dict(zip(view.entity.join_keys, decode_key(k), strict=True)) for k in ekeys]


def decode_key(key: str) -> list[Any]:
    out: list[Any] = []
    for part in key.split("\x1f"):
        kind, _, text = part.partition(":")
        if kind == "s":
            out.append(text)
        else:
            out.append(json.loads(text) if text not in ("True", "False") else text == "True")
    return out


def plain(v: Any) -> Any:
    """A plain Python value: NumPy scalars unwrapped, NaN as None."""
    v = v.item() if isinstance(v, np.generic) else v
    return None if isinstance(v, float) and math.isnan(v) else v


def values_agree(a: Any, b: Any) -> bool:
    """Whether a served value and an offline value are the same feature value.

    Numbers (either one a float) agree within :data:`REL_TOL` / :data:`ABS_TOL`; integers,
    text and booleans must be equal; a time agrees with its ISO text (a logged feature
    vector holds times as text); null (None, NaN, ``pd.NA``) agrees only with null.
    Used by ``features check-consistency`` (online vs offline now) and by the serving
    skew check (logged served values vs offline at the request's time).
    """
    a, b = plain(a), plain(b)
    a = None if a is pd.NA else a
    b = None if b is pd.NA else b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, str) or isinstance(b, str):
            return False
        return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if isinstance(a, datetime) != isinstance(b, datetime):
        text, moment = (a, b) if isinstance(b, datetime) else (b, a)
        try:
            return bool(pd.Timestamp(text) == pd.Timestamp(moment))
        except (ValueError, TypeError):
            return False
    return bool(a == b)
