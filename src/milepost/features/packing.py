"""Online rows ``(entity, event_ts, created_ts, packed)`` from feature rows, one way.

From a DataFrame (materialize, large pushes) or from a few dict rows (streaming pushes,
without a DataFrame round trip); both end in :func:`_pack`, so a row packs the same
whichever way it came.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from milepost.errors import InvalidInput
from milepost.features import online as online_mod
from milepost.features.consistency import plain
from milepost.features.offline import normalize_times
from milepost.features.push import epoch_ms, utc

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import pandas as pd

    from milepost.features.definitions import FeatureView

__all__ = ["OnlineRowTuple", "pack_frame", "pack_records"]

#: ``(entity key, event ms, created ms, packed values)``, as online stores write them.
OnlineRowTuple = tuple[str, int, int, bytes]


def pack_frame(view: FeatureView, frame: pd.DataFrame) -> list[OnlineRowTuple]:
    """The online rows of a frame of a view (its transform already applied)."""
    ts = normalize_times(frame[view.timestamp_field], f"{view.name}.{view.timestamp_field}")
    created = (
        normalize_times(frame[view.created_timestamp_field], "created timestamp")
        if view.created_timestamp_field
        else ts
    )
    ts_ms = (ts.astype("int64") // 1000).tolist()
    cr_ms = (created.astype("int64") // 1000).tolist()
    keys = zip(*[frame[k].tolist() for k in view.entity.join_keys], strict=True)
    values = zip(
        *[
            [None if isinstance(v, float) and math.isnan(v) else v for v in frame[f].tolist()]
            for f in view.features
        ],
        strict=True,
    )
    return _pack(view, keys, ts_ms, cr_ms, values)


def pack_records(view: FeatureView, records: list[dict[str, Any]]) -> list[OnlineRowTuple]:
    """The online rows of a few dict rows of a view without a transform."""
    needed = [*view.entity.join_keys, view.timestamp_field, *view.features]
    if view.created_timestamp_field:
        needed.append(view.created_timestamp_field)
    for record in records:
        missing = [c for c in needed if c not in record]
        if missing:
            raise InvalidInput(
                f"Feature view {view.name!r}: column {missing[0]!r} is missing from its rows.",
                hint="Check the source columns and the schema.",
            )
    what = f"{view.name}.{view.timestamp_field}"
    ts = [epoch_ms(utc(r[view.timestamp_field], what)) for r in records]
    created = (
        [epoch_ms(utc(r[view.created_timestamp_field], "created timestamp")) for r in records]
        if view.created_timestamp_field
        else ts
    )
    keys = ([r[k] for k in view.entity.join_keys] for r in records)
    values = ([plain(r[f]) for f in view.features] for r in records)
    return _pack(view, keys, ts, created, values)


def _pack(
    view: FeatureView,
    keys: Iterable[Sequence[Any]],
    ts: Sequence[int],
    created: Sequence[int],
    values: Iterable[Sequence[Any]],
) -> list[OnlineRowTuple]:
    rows = []
    for key, event_ms, created_ms, vals in zip(keys, ts, created, values, strict=True):
        try:
            blob = online_mod.pack(event_ms, created_ms, vals)
        except (TypeError, ValueError, OverflowError) as exc:  # msgpack: a value it cannot hold
            raise InvalidInput(
                f"Feature view {view.name!r}: a value cannot be stored: {exc}.",
                hint="Feature values must be numbers that fit 64 bits, text, booleans or nulls.",
            ) from exc
        rows.append((online_mod.entity_key(key), event_ms, created_ms, blob))
    return rows
