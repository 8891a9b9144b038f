"""Reading decision records back from the prediction log, and the explainability check.

:class:`~milepost.serving.service.DeploymentService` delegates here: ``decision`` and
``decisions`` read a consequential endpoint's records (see
:mod:`milepost.serving.decisions`) from the log alone, without loading the model;
:func:`require_explainable` refuses a version such an endpoint could not explain, and
:func:`consequential_change` checks the marking (or unmarking) of an endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from milepost.errors import Conflict, InvalidInput, MilepostError, NotFound
from milepost.serving.decisions import DecisionRecord

if TYPE_CHECKING:
    from collections.abc import Callable

    from milepost.models.models import ModelVersion
    from milepost.models.service import LoadedModel, ModelService
    from milepost.serving.backends.sql import SqlServingStore
    from milepost.serving.spec import EndpointSpec, Variant

__all__ = ["consequential_change", "read_decision", "read_decisions", "require_explainable"]


def consequential_change(
    name: str,
    current: EndpointSpec,
    consequential: bool,
    explainable: Callable[[Variant], object],
) -> Callable[[EndpointSpec], EndpointSpec]:
    """Check that endpoint ``name`` (its spec ``current``) may be marked (or unmarked)
    consequential, and return the spec change that does it: marked, it must log its
    predictions and each variant that answers (all but shadows) must pass
    ``explainable``; the change refuses if those variants moved meanwhile.

    Raises:
        InvalidInput: the endpoint does not log predictions, or a variant cannot be
            explained.
    """
    if consequential and not current.log_predictions:
        raise InvalidInput(
            f"Endpoint {name!r} does not log its predictions, so it cannot keep decision records.",
            hint="Create a logging endpoint (without --no-log) for consequential decisions.",
        )
    checked = sorted(v.name for v in current.variants if v.role != "shadow")
    if consequential:
        for v in current.variants:
            if v.role != "shadow":
                explainable(v)

    def change(spec: EndpointSpec) -> EndpointSpec:
        now = sorted(v.name for v in spec.variants if v.role != "shadow")
        if consequential and now != checked:
            raise Conflict(
                f"The variants of {name!r} changed while they were checked; nothing was changed.",
                hint="Mark it again.",
            )
        spec.consequential = consequential
        return spec

    return change


def require_explainable(
    models: ModelService, endpoint: str, mv: ModelVersion, loaded: LoadedModel
) -> None:
    """Refuse a version a consequential endpoint could not explain: its explainer is
    built (as a replica builds it) and run on its input example.

    Raises:
        InvalidInput: the version cannot be explained (the message says why).
    """
    import pandas as pd

    from milepost.serving.explain import build_explainer

    try:
        explainer = build_explainer(loaded, data=models.data)
        if mv.input_example:
            frame = pd.DataFrame(mv.input_example).head(1)
            names = loaded.signature.input_names if loaded.signature else None
            explainer(frame[names] if names else frame)
    except Exception as exc:
        why = exc.message if isinstance(exc, MilepostError) else f"{type(exc).__name__}: {exc}"
        raise InvalidInput(
            f"Endpoint {endpoint!r} makes consequential decisions, each recorded with "
            f"its explanation, but {mv.uri} cannot be explained: {why}",
            hint="Serve a model SHAP explains exactly (tree ensembles, linear models, or "
            "numeric inputs with a recorded training dataset or input example), or leave "
            "the endpoint unmarked (--not-consequential).",
        ) from exc


def read_decision(store: SqlServingStore, request_id: str, row: int) -> DecisionRecord:
    """The decision answered under ``request_id`` (its row ``row``), from the log alone
    (arguments already checked; see :meth:`DeploymentService.decision`)."""
    from milepost.serving.feedback import logged_rows

    served = [r for r in logged_rows(request_id, store=store) if r.get("role") != "shadow"]
    if not served:
        raise NotFound(
            f"No endpoint logged a prediction with request id {request_id[:64]!r}.",
            hint="Give the request_id of a /predict answer. The last second's answers "
            "may not be written yet, and logs past their retention are deleted.",
        )
    endpoint = str(served[0]["endpoint"])
    rows = sorted({int(r["row"]) for r in served})
    found = next((r for r in served if int(r["row"]) == row), None)
    if found is None:
        raise InvalidInput(
            f"Request {request_id!r} predicted {len(rows)} row(s) (0..{rows[-1]}); there "
            f"is no row {row}."
        )
    if found["status"] == "ok" and found.get("explanation") is None:
        try:
            consequential = store.get(endpoint)[0].consequential
        except NotFound:  # the endpoint is gone; its log is still there
            consequential = False
        if consequential:
            message = (
                f"Request {request_id!r} was answered by endpoint {endpoint!r} before it "
                "was marked consequential, so it has no decision record."
            )
        else:
            message = (
                f"Endpoint {endpoint!r} keeps no decision records: it is not marked "
                f"consequential, so request {request_id!r} was logged without an "
                "explanation."
            )
        raise NotFound(
            message,
            hint=f"Mark it (`milepost endpoints update {endpoint} --consequential`) to "
            "record the decisions it makes from then on; to explain this input now, "
            f"POST it to /v1/endpoints/{endpoint}/explain.",
        )
    return _decision(found, len(rows))


def read_decisions(
    store: SqlServingStore, endpoint: str, *, since_ms: int, limit: int
) -> list[DecisionRecord]:
    """An endpoint's newest ``limit`` decision records at or after ``since_ms``
    (arguments already checked; see :meth:`DeploymentService.decisions`)."""
    spec, _ = store.get(endpoint)
    found = _newest(store, endpoint, since_ms, limit)
    if not found and not spec.consequential:
        raise NotFound(
            f"Endpoint {endpoint!r} keeps no decision records: it is not marked consequential.",
            hint=f"Mark it: `milepost endpoints update {endpoint} --consequential`.",
        )
    return found


def _json(text: Any) -> Any:
    return None if text is None else orjson.loads(text)


def _ms(ts: Any) -> int:
    return ts if isinstance(ts, int) else int(ts.timestamp() * 1000)


def _decision(r: dict[str, Any], rows: int) -> DecisionRecord:
    """A decision record from one log row."""
    return DecisionRecord(
        request_id=str(r["request_id"]),
        row=int(r["row"]),
        rows=rows,
        at=_ms(r["ts"]),
        endpoint=str(r["endpoint"]),
        variant=str(r["variant"]),
        model=str(r["model"]),
        version=int(r["version"]),
        features=_json(r["features"]) or {},
        prediction=_json(r["prediction"]),
        probabilities=_json(r.get("probabilities")),
        explanation=_json(r.get("explanation")),
        status=str(r["status"]),
        error=r.get("error"),
        latency_ms=r.get("latency_ms"),
    )


def _newest(
    store: SqlServingStore, endpoint: str, since_ms: int, limit: int
) -> list[DecisionRecord]:
    """The newest ``limit`` decision records of an endpoint at or after ``since_ms``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from milepost.errors import BackendUnavailable
    from milepost.monitoring._segments import local_segments
    from milepost.serving.logger import LOG_SCHEMA

    paths = store.segments(endpoint, since_ms=since_ms)
    if not paths:
        return []
    with local_segments(paths, storage_options=store.storage_options) as files:
        if not files:
            return []
        try:
            table = ds.dataset(files, schema=LOG_SCHEMA, format="parquet").to_table(
                filter=(ds.field("explanation").is_valid())
                & (ds.field("role") != "shadow")
                & (ds.field("ts") >= pa.scalar(since_ms, pa.timestamp("ms", tz="UTC")))
            )
        except OSError as exc:
            raise BackendUnavailable(
                f"Cannot read the prediction log of {endpoint!r}: {exc}"
            ) from exc
    if not table.num_rows:
        return []
    grouped = table.group_by("request_id").aggregate([("row", "count")]).to_pydict()
    counts = dict(zip(grouped["request_id"], grouped["row_count"], strict=True))
    order = pc.sort_indices(
        table,
        sort_keys=[("ts", "descending"), ("request_id", "descending"), ("row", "ascending")],
    )
    newest = table.take(order[:limit]).to_pylist()
    return [_decision(r, int(counts[r["request_id"]])) for r in newest]
