"""What a replica does with a request: route, read features, check, predict, log.

On a consequential endpoint every answered row is explained before the answer goes out
and its explanation is logged with it (:mod:`milepost.serving.decisions`); a shadow's
mirrored answers are not decisions and are not explained.

The hot path avoids pandas for ONNX-backed models: rows (dicts) are checked against the
signature column by column and fed to onnxruntime as arrays. Routing state is rebuilt
in a background thread when the endpoint's revision changes (polled twice a second),
then swapped in with one assignment, so requests never wait for a model to load.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd

from milepost.errors import InvalidInput, MilepostError, ModelFailed, NotFound
from milepost.models.flavors import OnnxPredictor
from milepost.models.signature import enforce, refuses_null
from milepost.serving._fastpath import FastFeed
from milepost.serving.logger import new_request_id
from milepost.serving.router import Router

if TYPE_CHECKING:
    from collections.abc import Callable

    from milepost.data.service import DataService
    from milepost.features.service import FeatureService, ServingReader
    from milepost.models.service import LoadedModel, ModelService
    from milepost.models.signature import Signature
    from milepost.serving.backends.sql import SqlServingStore
    from milepost.serving.logger import PredictionLogger
    from milepost.serving.spec import EndpointSpec, Variant

__all__ = ["EndpointEngine", "Reply", "VariantRuntime"]

log = logging.getLogger("milepost.serving")

_CHECKS: dict[str, Callable[[Any], bool]] = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "datetime": lambda v: isinstance(v, str),
}
_INT64 = (-(2**63), 2**63 - 1)


def _columns(
    rows: list[dict[str, Any]],
    signature: Signature,
    refuses_null: Callable[[str], bool] | None = None,
) -> dict[str, list[Any]]:
    """Signature check on plain rows: each input present, of its type, non-null if required.

    ``refuses_null(column)`` says whether the model cannot take a null in a column the
    signature lets be null (a version logged before models were probed for nulls, or a
    signature given by hand): such a null is the client's to fix, like any other.
    """
    cols: dict[str, list[Any]] = {}
    for spec in signature.inputs:
        check = _CHECKS[spec.type]
        values = []
        for i, row in enumerate(rows):
            if spec.name not in row:
                raise InvalidInput(
                    f"Row {i} is missing column {spec.name!r}.",
                    hint="The model expects: " + ", ".join(signature.input_names) + ".",
                )
            v = row[spec.name]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                if not spec.nullable:
                    raise InvalidInput(
                        f"Row {i}: column {spec.name!r} is null, but the model requires a value."
                    )
                if refuses_null is not None and refuses_null(spec.name):
                    raise InvalidInput(
                        f"Row {i}: column {spec.name!r} is null, but the model cannot predict "
                        "with a missing value there.",
                        hint=f"Send a value for {spec.name!r} (the model does not handle "
                        "missing values in this column).",
                    )
                v = None
            elif not check(v):
                raise InvalidInput(
                    f"Row {i}: column {spec.name!r} is {type(v).__name__} {v!r}, but the "
                    f"model expects {spec.type}."
                )
            elif spec.type == "integer" and not _INT64[0] <= v <= _INT64[1]:
                raise InvalidInput(
                    f"Row {i}: column {spec.name!r} is {v}, outside the 64-bit integer range."
                )
            values.append(v)
        cols[spec.name] = values
    return cols


def _frame(cols: dict[str, list[Any]], signature: Signature) -> pd.DataFrame:
    """Checked columns as the DataFrame a native model predicts on (nulls as pandas
    holds them: NaN in number columns, None elsewhere)."""
    data = {}
    for spec in signature.inputs:
        values = cols[spec.name]
        if spec.type == "float" or (spec.type == "integer" and None in values):
            data[spec.name] = pd.Series(values, dtype=np.float64)
        elif spec.type == "integer":
            data[spec.name] = pd.Series(values, dtype=np.int64)
        elif spec.type == "boolean" and None not in values:
            data[spec.name] = pd.Series(values, dtype=np.bool_)
        else:
            data[spec.name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data)


@dataclass
class Reply:
    """An HTTP answer: status, JSON body, and whether to close the connection."""

    status: int
    body: bytes


def _finite(values: list[Any]) -> bool:
    return all(map(math.isfinite, values))


def _session_runner(session: Any) -> Callable[[dict[str, np.ndarray]], list[Any]]:
    """``feed -> all outputs`` for a compiled feed, through the public ``InferenceSession.run``.

    The output names and one ``RunOptions`` are made once per variant: ``run(None, ...)``
    would list the outputs again on every call, and without options the binding makes
    fresh ones per call (about 1 us of a 1-row run here). ``run`` still checks that the
    feed names every input (about 3 us for a 10-input model, measured with onnxruntime
    1.32), which a :class:`FastFeed` feed always does; calling the session's private
    native binding would skip that, but a private binding may change in any release.
    A failure of the call sends the request down the general path.
    """
    import onnxruntime

    names = [o.name for o in session.get_outputs()]
    run = session.run
    options = onnxruntime.RunOptions()  # read-only during a run: safe to share
    return lambda feed: run(names, feed, options)


class VariantRuntime:
    """One loaded model version, ready to predict (ONNX fast path when verified).

    An ONNX twin answers complete, finite rows; anything else (nulls, values beyond
    float32, input onnxruntime fails on) is answered by the native model, so a client
    gets the same answer either way. A failure of the model on input that passed the
    signature is :class:`ModelFailed` (the variant's error), never the client's.
    """

    def __init__(
        self,
        variant: Variant,
        loaded: LoadedModel,
        features: ServingReader | None,
        data: DataService | None = None,
    ) -> None:
        self.variant = variant
        self.loaded = loaded
        self.features = features
        self.data = data
        self.signature = loaded.signature
        self.onnx: OnnxPredictor | None = (
            loaded._impl if isinstance(loaded._impl, OnnxPredictor) else None
        )
        self.is_classifier = (
            len(self.onnx.outputs) > 1
            if self.onnx is not None
            else hasattr(loaded._impl, "predict_proba")
        )
        self.classes = _classes(loaded, self.onnx) if self.is_classifier else None
        prefix = b'{"classes":' + orjson.dumps(self.classes, option=orjson.OPT_SERIALIZE_NUMPY)
        self._proba_prefix = prefix + b',"p":'
        self._nullable = self.signature is not None and any(
            c.nullable for c in self.signature.inputs
        )
        self._null_refused: dict[str, bool] = {}
        self._fast = (
            FastFeed.compile(self.signature, self.onnx.inputs) if self.onnx is not None else None
        )
        self._session_run = _session_runner(self.onnx.session) if self.onnx is not None else None
        self._explainer: Any = None
        self._explainer_lock = threading.Lock()

    def proba_json(self, proba: list[list[float]] | None) -> list[str] | None:
        """The log's ``probabilities`` text of each row: ``{"classes": [...], "p": [...]}``
        (``classes`` None when the model does not name them); None without probabilities.
        The classes are encoded once per variant, so a row costs one small encoding."""
        if proba is None:
            return None
        prefix = self._proba_prefix
        return [(prefix + orjson.dumps(p) + b"}").decode() for p in proba]

    def prepare(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows with the pinned online features filled in (server-side: no skew)."""
        if self.features is None:
            return rows
        values, statuses = self.features.read(rows)
        merged = [dict(r) for r in rows]
        for name, column in values.items():
            for i, v in enumerate(column):
                merged[i][name] = v
                if statuses[name][i] != "present" and self.signature is not None:
                    spec = next((c for c in self.signature.inputs if c.name == name), None)
                    if spec is not None and not spec.nullable:
                        keys = {k: rows[i].get(k) for k in self.features.join_keys}
                        raise InvalidInput(
                            f"Row {i}: feature {name!r} is {statuses[name][i]} in the "
                            f"online store for {keys}.",
                            hint="Materialize the features or check the entity key.",
                        )
        return merged

    def _refuses_null(self, column: str) -> bool:
        """Whether the native model fails on its input example with ``column`` null
        (probed once per column, on the first null a request brings)."""
        known = self._null_refused.get(column)
        if known is None:
            known = False
            example = self.loaded.version.input_example
            if example and self.signature is not None:
                try:
                    row = enforce(pd.DataFrame(example).head(1), self.signature)
                    known = refuses_null(self.loaded.native.predict, row, column)
                except Exception as exc:  # no verdict: the model decides on the request
                    log.info("Null probe of %s on %r skipped: %s", self.variant.name, column, exc)
            self._null_refused[column] = known
        return known

    def _failed(self, detail: str) -> ModelFailed:
        uri = self.loaded.version.uri
        log.warning("%s (%s) failed to predict: %s", self.variant.name, uri, detail)
        return ModelFailed(
            f"Variant {self.variant.name!r} ({uri}) failed on input that passed its "
            f"signature: {detail}",
            hint="The model, not the request, is at fault; this counts toward the "
            "variant's error rate.",
        )

    def _native(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        model = self.loaded.native if self.onnx is not None else self.loaded._impl
        preds = np.asarray(model.predict(frame))
        proba = np.asarray(model.predict_proba(frame)) if self.is_classifier else None
        return preds, proba

    def predict(self, rows: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
        """Predictions (and class probabilities for classifiers).

        Raises:
            InvalidInput: the rows do not fit the signature (the client's fault).
            ModelFailed: the model failed on rows that fit it, or answered NaN.
        """
        outputs = self._run_fast(rows) if self._fast is not None else None
        if outputs is None:
            return self._predict(rows)
        return self._answers(rows, outputs)

    def _run_fast(self, rows: list[dict[str, Any]]) -> list[Any] | None:
        """The twin's outputs for rows that fit the fast path; None: the general path."""
        assert self._fast is not None and self.onnx is not None
        feed = self._fast.feed(rows)
        if feed is None:
            return None
        try:
            out: list[Any] = self._session_run(feed)  # type: ignore[misc]
        except Exception:  # the general path retries, then the native model answers
            return None
        return out

    def _answers(
        self, rows: list[dict[str, Any]], outputs: list[Any]
    ) -> tuple[list[Any], list[list[float]] | None]:
        preds = np.asarray(outputs[0]).ravel()
        proba = (
            OnnxPredictor.probabilities(outputs[1])
            if self.is_classifier and len(outputs) > 1
            else None
        )
        labels, probabilities = preds.tolist(), (None if proba is None else proba.tolist())
        if not (  # one row: a check in Python is cheaper than two NumPy reductions
            len(rows) == 1
            and (preds.dtype.kind in "iub" or (preds.dtype.kind == "f" and _finite(labels)))
            and (probabilities is None or (proba.dtype.kind == "f" and _finite(probabilities[0])))  # type: ignore[union-attr]
        ):
            self._check_finite(rows, preds, proba)
        return labels, probabilities

    def _check_finite(
        self, rows: list[dict[str, Any]], preds: np.ndarray, proba: np.ndarray | None
    ) -> None:
        for name, values in (("prediction", preds), ("probability", proba)):
            if values is not None and values.dtype.kind in "fc" and not np.isfinite(values).all():
                row = int(np.flatnonzero(~np.isfinite(values).reshape(len(rows), -1).all(1))[0])
                raise self._failed(f"it answered a non-finite {name} (NaN) for row {row}")

    def _predict(self, rows: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
        """The general path: any signature, nulls, native fallback, precise errors."""
        cols = None
        if self.signature is not None:
            cols = _columns(rows, self.signature, self._refuses_null if self._nullable else None)
        try:
            outputs = self.onnx.run_columns(cols) if self.onnx is not None and cols else None
            if outputs is not None:
                preds = np.asarray(outputs[0]).ravel()
                proba = (
                    OnnxPredictor.probabilities(outputs[1])
                    if self.is_classifier and len(outputs) > 1
                    else None
                )
            else:
                signature = self.signature
                frame = pd.DataFrame(rows) if signature is None else _frame(cols or {}, signature)
                preds, proba = self._native(frame)
        except MilepostError as exc:
            if isinstance(exc, InvalidInput):  # raised inside the model: still its failure
                raise self._failed(f"{type(exc).__name__}: {exc.message}") from exc
            raise
        except Exception as exc:
            raise self._failed(f"{type(exc).__name__}: {str(exc)[:400]}") from exc
        self._check_finite(rows, preds, proba)
        return preds.tolist(), (None if proba is None else proba.tolist())

    def explain(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Per-feature contributions (SHAP), consistent with the prediction."""
        from milepost.serving.explain import build_explainer

        with self._explainer_lock:
            if self._explainer is None:
                self._explainer = build_explainer(self.loaded, data=self.data)
        if self.signature is not None:
            frame = _frame(_columns(rows, self.signature), self.signature)
        else:
            frame = pd.DataFrame(rows)
        explained: list[dict[str, Any]] = self._explainer(frame)
        return explained

    def decide(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        """The explanation of each row and its decision record (the log's ``explanation``
        text, see :mod:`milepost.serving.decisions`), for a consequential endpoint.

        Fails closed: an explanation that cannot be computed (or does not add up) is the
        variant's error, so the answer is not given without its record.

        Raises:
            ModelFailed: the explainer failed on rows that passed the signature.
        """
        from milepost.serving.decisions import compact_explanation

        try:
            explained = self.explain(rows)
        except MilepostError as exc:
            raise self._failed(
                f"its explanation, which a consequential endpoint records with every "
                f"decision, failed: {exc.message}"
            ) from exc
        except Exception as exc:
            raise self._failed(
                "its explanation, which a consequential endpoint records with every "
                f"decision, failed: {type(exc).__name__}: {str(exc)[:400]}"
            ) from exc
        records = [
            orjson.dumps(compact_explanation(e), option=orjson.OPT_SERIALIZE_NUMPY).decode()
            for e in explained
        ]
        return explained, records


def _classes(loaded: LoadedModel, onnx: OnnxPredictor | None) -> list[Any] | None:
    """A classifier's classes in probability-column order: from the ONNX graph, else the
    native model's ``classes_`` (loaded for it when ONNX serves the version and its graph
    does not name them), else None."""
    if onnx is not None and onnx.classes is not None:
        return onnx.classes
    if onnx is not None and onnx.native is None:  # an ONNX-flavor model: no native object
        return None
    try:
        classes = getattr(loaded.native if onnx is not None else loaded._impl, "classes_", None)
    except Exception as exc:  # the model still serves; its log rows name no classes
        log.info("Classes of %s unknown: %s", loaded.version.uri, exc)
        return None
    if classes is None:
        return None
    return [c.item() if hasattr(c, "item") else c for c in classes]


def _describe(exc: BaseException) -> str:
    """An error as the prediction log records it."""
    return exc.message if isinstance(exc, MilepostError) else f"{type(exc).__name__}: {exc}"


def _warm_up(loaded: Any) -> None:
    """Predict on the stored input example before the variant takes traffic.

    The first calls into a freshly loaded model pay one-off costs (lazy imports, ONNX
    session allocation, CPU caches): without this a new canary's first requests look tens
    of milliseconds slower than the warm primary, and its latency gate would judge that.
    """
    example = loaded.version.input_example
    if not example:
        return
    try:
        frame = pd.DataFrame(example)
        for _ in range(3):
            loaded.predict(frame.head(1))
            if hasattr(loaded._impl, "predict_proba"):
                loaded.predict_proba(frame)
    except Exception as exc:  # a warm-up is an optimisation; requests report real errors
        log.info("Warm-up of %s skipped: %s", loaded.version.uri, exc)


class _State:
    def __init__(
        self, spec: EndpointSpec, revision: int, variants: dict[str, VariantRuntime]
    ) -> None:
        self.spec = spec
        self.revision = revision
        self.variants = variants
        self.router = Router.of(spec)


class EndpointEngine:
    """Routing state and request handling for one endpoint in one replica."""

    def __init__(
        self,
        endpoint: str,
        *,
        store: SqlServingStore,
        models: ModelService,
        features: FeatureService,
        generation: int = 0,
        logger: PredictionLogger | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        from milepost.serving import metrics

        self.store = store
        self.models = models
        self.features = features
        self.endpoint = endpoint
        self.generation = generation
        self.logger = logger
        self.metrics = metrics
        self.draining = False
        self._cache: dict[str, VariantRuntime] = {}
        spec, revision = store.get(endpoint)
        self.state = self._build(spec, revision)
        self._shadow_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="milepost-shadow"
        )
        self._stop = threading.Event()
        self._poller = threading.Thread(
            target=self._poll, args=(poll_seconds,), daemon=True, name="milepost-routing"
        )
        self._poller.start()

    # -- routing state ----------------------------------------------------------------

    def _effective(self, spec: EndpointSpec) -> EndpointSpec:
        """During a rolling update, replicas of older generations keep the previous primary."""
        ro = spec.rollout
        if ro is None or ro.kind != "rolling" or ro.status != "in_progress":
            return spec
        spec = spec.model_copy(deep=True)
        use = ro.candidate if self.generation >= ro.target_generation else ro.previous
        for v in spec.variants:
            if v.name == use:
                v.role = "primary"
            elif v.role == "primary" or v.name in (ro.candidate, ro.previous):
                v.role = "standby"
        return spec

    def _build(self, spec: EndpointSpec, revision: int) -> _State:
        spec = self._effective(spec)
        variants = {}
        for v in spec.variants:
            loaded = self._cache.get(v.name) or self._load(v)
            loaded.variant = v
            variants[v.name] = loaded
        self._cache = dict(variants)
        return _State(spec, revision, variants)

    def _load(self, variant: Variant) -> VariantRuntime:
        loaded = self.models.load(variant.uri, prefer_onnx=True)
        reader = (
            self.features.serving_reader(loaded.version.feature_refs)
            if loaded.version.feature_refs
            else None
        )
        _warm_up(loaded)
        return VariantRuntime(variant, loaded, reader, self.models.data)

    def _poll(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            try:
                self.metrics.flush()  # queued request counts and latencies
            except Exception:  # metrics must never stop routing refreshes
                log.exception("Writing request metrics failed")
            try:
                revision = self.store.revision(self.endpoint)
                if revision is not None and revision != self.state.revision:
                    spec, revision = self.store.get(self.endpoint)
                    self.state = self._build(spec, revision)  # loads first, then swaps
            except MilepostError as exc:
                log.warning(
                    "Routing refresh for %s failed (keeping revision %s): %s",
                    self.endpoint,
                    self.state.revision,
                    exc,
                )

    def close(self) -> None:
        """Stop polling and flush the log."""
        self._stop.set()
        self._shadow_pool.shutdown(wait=True)
        self.metrics.flush()
        if self.logger is not None:
            self.logger.flush()

    # -- requests ---------------------------------------------------------------------

    @property
    def _logging(self) -> bool:
        """Whether rows are logged (so their probabilities are worth encoding)."""
        return self.logger is not None and self.state.spec.log_predictions

    def _parse(self, body: bytes) -> tuple[list[dict[str, Any]], str | None, dict[str, Any]]:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"The request body is not JSON: {exc}.") from None
        if not isinstance(payload, dict):
            raise InvalidInput("The request body must be a JSON object with 'rows' (or 'row').")
        rows = payload.get("rows")
        if rows is None and isinstance(payload.get("row"), dict):
            rows = [payload["row"]]
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise InvalidInput(
                "'rows' must be a non-empty list of objects (one per prediction).",
                hint='Send {"rows": [{"age": 40, ...}]}.',
            )
        key = payload.get("key")
        return rows, None if key is None else str(key), payload

    def _route_key(
        self,
        rows: list[dict[str, Any]],
        key: str | None,
        request_id: str,
        variant: VariantRuntime | None,
    ) -> str:
        if key is not None:
            return key
        reader = variant.features if variant is not None else None
        if reader is not None and all(k in rows[0] for k in reader.join_keys):
            return "|".join(str(rows[0][k]) for k in reader.join_keys)
        return request_id

    def predict(
        self, body: bytes, forced_variant: str | None = None, *, explain: bool = False
    ) -> Reply:
        """Handle ``POST /v1/endpoints/{name}/predict`` (and ``/explain``)."""
        start = time.perf_counter()
        state = self.state
        request_id = new_request_id()
        rows, key, payload = self._parse(body)
        explain = explain or bool(payload.get("explain"))
        if forced_variant is not None:
            runtime = state.variants.get(forced_variant)
            if runtime is None:
                raise NotFound(f"Endpoint {self.endpoint!r} has no variant {forced_variant!r}.")
            route_key = key or request_id
        else:
            route_key = self._route_key(
                rows, key, request_id, state.variants[state.router.primary.name]
            )
            runtime = state.variants[state.router.pick(route_key).name]
        variant = runtime.variant
        status, error = "ok", ""
        records: list[str] | None = None
        try:
            prepared = runtime.prepare(rows)
            preds, proba = runtime.predict(prepared)
            if state.spec.consequential and self._logging:  # a decision: record why
                explained, records = runtime.decide(prepared)
                explanation = explained if explain else None
            else:
                explanation = runtime.explain(prepared) if explain else None
        except InvalidInput as exc:
            status, error = "invalid", exc.message
            self._log(request_id, rows, variant, route_key, None, start, status, error)
            raise
        except Exception as exc:  # the variant's fault: it counts toward its error rate
            status, error = "error", _describe(exc)
            self._log(request_id, rows, variant, route_key, None, start, status, error)
            raise
        latency = time.perf_counter() - start
        self._log(
            request_id,
            prepared,
            variant,
            route_key,
            preds,
            start,
            status,
            error,
            latency,
            runtime.proba_json(proba) if self._logging else None,
            records,
        )
        if forced_variant is None:
            for shadow in state.router.mirrors(route_key):
                self._shadow_pool.submit(
                    self._shadow, state.variants[shadow.name], rows, request_id, route_key
                )
        out: dict[str, Any] = {
            "request_id": request_id,
            "endpoint": self.endpoint,
            "variant": variant.name,
            "model": variant.uri,
            "predictions": preds,
        }
        if proba is not None:
            out["probabilities"] = proba
        if explanation is not None:
            out["explanations"] = explanation
        if records is not None:  # the client knows the answer is a recorded decision
            out["decision_record"] = True
        return Reply(200, orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY))

    def _shadow(
        self, runtime: VariantRuntime, rows: list[dict[str, Any]], request_id: str, route_key: str
    ) -> None:
        start = time.perf_counter()
        try:
            prepared = runtime.prepare(rows)
            preds, proba = runtime.predict(prepared)
            self._log(
                request_id,
                prepared,
                runtime.variant,
                route_key,
                preds,
                start,
                "ok",
                "",
                proba=runtime.proba_json(proba) if self._logging else None,
            )
        except InvalidInput as exc:  # the request does not fit this variant's signature
            self._log(
                request_id, rows, runtime.variant, route_key, None, start, "invalid", exc.message
            )
        except Exception as exc:
            self._log(
                request_id, rows, runtime.variant, route_key, None, start, "error", _describe(exc)
            )

    def _log(
        self,
        request_id: str,
        rows: list[dict[str, Any]],
        variant: Variant,
        key: str,
        preds: list[Any] | None,
        start: float,
        status: str,
        error: str,
        latency: float | None = None,
        proba: list[str] | None = None,
        explanations: list[str] | None = None,
    ) -> None:
        """Count the request and log its rows (``proba``: each row's ``probabilities``
        text, from :meth:`VariantRuntime.proba_json`; ``explanations``: each row's
        decision record, from :meth:`VariantRuntime.decide`)."""
        latency = time.perf_counter() - start if latency is None else latency
        self.metrics.observe(self.endpoint, variant.name, status, latency)
        if self.logger is None or not self.state.spec.log_predictions:
            return
        now = time.time_ns() // 1_000_000
        for i, row in enumerate(rows):
            self.logger.append(
                {
                    "request_id": request_id,
                    "row": i,
                    "ts": now,
                    "endpoint": self.endpoint,
                    "variant": variant.name,
                    "model": variant.model,
                    "version": variant.version,
                    "role": variant.role,
                    "key": key,
                    "features": orjson.dumps(
                        row, default=str, option=orjson.OPT_SERIALIZE_NUMPY
                    ).decode(),
                    "prediction": None if preds is None else orjson.dumps(preds[i]).decode(),
                    "probabilities": None if proba is None else proba[i],
                    "explanation": None if explanations is None else explanations[i],
                    "latency_ms": latency * 1000,
                    "status": status,
                    "error": error or None,
                }
            )

    def feedback(self, body: bytes) -> Reply:
        """Handle ``POST /v1/endpoints/{name}/feedback``: ground truth by request id.

        The rules are in :mod:`milepost.serving.feedback`. This blocks (it reads the
        prediction log and writes the metadata store): the app calls it from a worker
        thread.
        """
        from milepost.serving.feedback import check_rows, find_request, parse_feedback

        request = parse_feedback(body)
        logged = find_request(
            request.request_id,
            endpoint=self.endpoint,
            store=self.store,
            logger=self.logger,
            log_predictions=self.state.spec.log_predictions,
        )
        offset = check_rows(request, logged)
        recorded, unchanged = self.store.add_feedback(
            self.endpoint, request.request_id, request.labels, offset=offset
        )
        return Reply(
            200,
            orjson.dumps(
                {"request_id": request.request_id, "recorded": recorded, "unchanged": unchanged}
            ),
        )
