"""Training sets: point-in-time-correct features for entity rows, with their lineage."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from milepost import _validate as check
from milepost.errors import InvalidInput
from milepost.features.offline import ViewRequest, run_on_demand
from milepost.features.refs import check_feature_refs
from milepost.features.transforms import StoredTransform

if TYPE_CHECKING:
    from collections.abc import Sequence

    from milepost.features.repo import Definitions
    from milepost.features.resolve import Plan
    from milepost.features.service import FeatureService

__all__ = ["get_historical_features"]

#: Rows of a training set stored with the run that retrieved it (for skew checks).
SAMPLE_ROWS = 1000


def get_historical_features(
    service: FeatureService,
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
    check_feature_refs(features)
    check.name(timestamp_column, "timestamp_column")
    check.boolean(full_feature_names, "full_feature_names")
    if run_id is not None:
        check.run_id(run_id)
    if not features:
        raise InvalidInput("Ask for at least one feature (view:feature).")
    plan = service.resolve(defs, features, full_names=full_feature_names)
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
        frame, lineage = service.offline.historical(
            entity_df,
            _offline_requests(service, plan),
            timestamp_column=timestamp_column,
            names=plan.names,
            fingerprints=plan.fingerprints,
        )
    except duckdb.Error as exc:
        raise InvalidInput(
            f"The point-in-time join failed: {exc}",
            hint="Check that entity_df's join keys have the sources' types.",
        ) from exc
    for view, _, _ in plan.on_demand:
        out = run_on_demand(view, frame)
        for feat in view.features:
            frame[f"{view.name}__{feat}"] = out[feat].to_numpy()
    result = entity_df.reset_index(drop=True).copy()
    for name, column in plan.pairs:
        result[name] = frame[column].to_numpy()
    _record_retrieval(service, plan, lineage, result, run_id)
    return result


def _offline_requests(service: FeatureService, plan: Plan) -> list[ViewRequest]:
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
            or service.offline.computed(req.view, plan.fingerprints[req.key])
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


def _record_retrieval(
    service: FeatureService,
    plan: Plan,
    lineage: list[dict[str, Any]],
    result: pd.DataFrame,
    run_id: str | None,
) -> None:
    refs = [f"{r.key}:{f}" for r in plan.stored for f in r.features]
    refs += [f"{v.name}:v{ver}:{f}" for v, ver, feats in plan.on_demand for f in feats]
    service.registry.record_retrieval(
        {
            "retrieval_id": uuid.uuid4().hex,
            "run_id": run_id,
            "refs_json": json.dumps(refs),
            "sources_json": json.dumps(lineage, default=str),
            "num_rows": len(result),
            "created_by": service.actor,
            "created_at": int(time.time() * 1000),
        }
    )
    if run_id is not None:
        sample = result.sample(n=min(SAMPLE_ROWS, len(result)), random_state=0)
        table = pa.Table.from_pandas(sample, preserve_index=False)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        service.tracking.log_bytes(
            run_id, sink.getvalue().to_pybytes(), "features/training_sample.parquet"
        )
