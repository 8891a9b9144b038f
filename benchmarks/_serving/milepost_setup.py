"""Build what ``benchmarks/serving.py`` serves; runs in Milepost's environment.

Usage: ``python milepost_setup.py CONFIG.json`` with ``MILEPOST_HOME`` set to a fresh
directory. The config names the work directory (``out``) where this writes:

- ``pipeline.pkl``: the fitted scikit-learn pipeline every peer loads (pickle, protocol 5;
  all environments have the same scikit-learn, numpy and pandas versions);
- ``model.onnx``: the verified ONNX twin of the ``churn`` version (the bytes Milepost
  serves, from its artifact store), for the bare ONNX peer;
- ``rows.json``: request rows (the model's 10 input columns) with the pipeline's
  predictions, and the entity keys (with the predictions on their online features) for
  the feature-lookup endpoint;
- ``setup.json``: versions, endpoints and what was checked.

The data is the demo's seeded churn frame (``milepost.demo.data.generate_customers``),
with event times in the last 25 days so that every customer's online features are within
the demo views' 30-day TTL. The pipeline is trained from ``get_historical_features``
inside a run, so the version logged from that run pins the feature refs; the same fitted
object is also logged from a second run that retrieved no features, so those versions pin
none (requests carry every input): once with its verified ONNX twin and once without.
"""

from __future__ import annotations

import json
import pickle
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROWS = 5_000
REQUEST_ROWS = 64  # distinct bodies the load generator cycles through
CHECK_ROWS = 16
FEATURE_REFS = [
    "customer_profile:age",
    "customer_profile:tenure_months",
    "customer_profile:plan",
    "customer_profile:region",
    "customer_profile:payment_method",
    "customer_activity:monthly_spend",
    "customer_activity:support_tickets",
    "customer_activity:sessions_last_30d",
    "customer_activity:late_payments",
    "customer_activity:discount_pct",
]

# endpoint -> (registered model, ONNX twin, pins features, log predictions)
ENDPOINTS: dict[str, tuple[str, bool, bool, bool]] = {
    "churn-ep": ("churn", True, False, True),
    "churn-nolog": ("churn", True, False, False),
    "churn-sklearn": ("churn-sklearn", False, False, True),
    "churn-features": ("churn-features", True, True, True),
}


def say(text: str) -> None:
    print(text, flush=True)


def _native(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready values (numpy scalars to Python)."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def main() -> None:
    import numpy as np
    import onnxruntime
    import pandas as pd
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    import milepost
    from milepost import Client
    from milepost.demo import features as demo_features
    from milepost.demo.data import CATEGORICAL, LABEL, NUMERIC, generate_customers, labels
    from milepost.demo.training import preprocess

    config = json.loads(Path(sys.argv[1]).read_text())
    out = Path(config["out"])
    inputs = NUMERIC + CATEGORICAL
    rt = milepost.get_runtime()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    say("data: generate, register, apply the demo feature views, materialize")
    frame = generate_customers(ROWS, start=today - timedelta(days=25), days=25)
    milepost.data.register("customers", frame, description="serving benchmark")
    store = milepost.features.FeatureStore(demo_features.__name__)
    store.apply()
    materialized = store.materialize_incremental()

    say("train from get_historical_features in a run (pins the feature refs)")
    with milepost.start_run(experiment="serving-bench", run_name="train"):
        train = store.get_historical_features(labels(frame), FEATURE_REFS)
        pipe = Pipeline(
            [("prep", preprocess(True)), ("model", LogisticRegression(max_iter=1_000))]
        ).fit(train[inputs], train[LABEL])
        example = train[inputs].head(5)
        pinned = milepost.log_model(
            pipe, "churn-features", input_example=example, onnx=True, description="pins features"
        )
    # a run that retrieved no features: its versions pin none (requests carry every input)
    say("log the same fitted pipeline without feature refs, with and without ONNX")
    with milepost.start_run(experiment="serving-bench", run_name="log"):
        onnx_version = milepost.log_model(pipe, "churn", input_example=example, onnx=True)
        sklearn_version = milepost.log_model(
            pipe, "churn-sklearn", input_example=example, onnx=False
        )
    client = Client()
    for mv in (pinned, onnx_version, sklearn_version):
        client.promote(mv.name, mv.version, "Production")

    say("create the endpoints")
    tracked: set[str] = set()
    for endpoint, (model, _onnx, _pins, log_predictions) in ENDPOINTS.items():
        # one endpoint tracks a model's Production; another on the same model pins it
        pin = {pinned.name: pinned, onnx_version.name: onnx_version}.get(model)
        version = pin.version if model in tracked and pin is not None else None
        rt.serving.create(endpoint, model, version=version, log_predictions=log_predictions)
        tracked.add(model)

    # request rows: the model's inputs as point-in-time training rows (their dtypes are
    # the signature's), and entity keys whose online features are the latest snapshot
    rows_frame = train[inputs].sample(REQUEST_ROWS, random_state=0)
    rows = [_native(r) for r in rows_frame.to_dict("records")]
    keys = [int(k) for k in frame["customer_id"].sample(REQUEST_ROWS, random_state=1)]
    online = store.get_online_features(FEATURE_REFS, [{"customer_id": k} for k in keys])
    online_frame = pd.DataFrame(online.values)[inputs]
    present = all(s == "present" for column in online.statuses.values() for s in column)
    latest = frame.set_index("customer_id").loc[keys, inputs].reset_index(drop=True)
    same_online = bool(
        np.allclose(
            online_frame[NUMERIC].to_numpy(float), latest[NUMERIC].to_numpy(float), equal_nan=True
        )
        and (online_frame[CATEGORICAL].to_numpy() == latest[CATEGORICAL].to_numpy()).all()
    )
    (out / "pipeline.pkl").write_bytes(pickle.dumps(pipe, protocol=5))
    (out / "model.onnx").write_bytes(rt.models.blobs.get_bytes(onnx_version.files["model.onnx"]))
    (out / "rows.json").write_text(
        json.dumps(
            {
                "inputs": inputs,
                "rows": rows,
                "predictions": pipe.predict(rows_frame).tolist(),
                "probabilities": pipe.predict_proba(rows_frame)[:, 1].tolist(),
                "keys": keys,
                "key_predictions": pipe.predict(online_frame).tolist(),
                "check_rows": CHECK_ROWS,
            }
        )
    )

    # a local reference for the cost of one 1-row prediction, each way the servers do it
    one = rows_frame.head(1)
    timings: dict[str, float] = {}
    for label, call in (
        ("predict", lambda: pipe.predict(one)),
        ("predict_and_proba", lambda: (pipe.predict(one), pipe.predict_proba(one))),
    ):
        for _ in range(50):
            call()
        n, start = 500, time.perf_counter()
        for _ in range(n):
            call()
        timings[label] = (time.perf_counter() - start) / n * 1000
    (out / "setup.json").write_text(
        json.dumps(
            {
                "milepost": milepost.__version__,
                "sklearn": sklearn.__version__,
                "numpy": np.__version__,
                "pandas": pd.__version__,
                "onnxruntime": onnxruntime.__version__,
                "endpoints": {
                    name: {
                        "model": model,
                        "onnx": onnx,
                        "features": pins,
                        "log_predictions": log_predictions,
                    }
                    for name, (model, onnx, pins, log_predictions) in ENDPOINTS.items()
                },
                "has_onnx": {
                    mv.name: bool(mv.has_onnx) for mv in (pinned, onnx_version, sklearn_version)
                },
                "feature_refs": pinned.feature_refs,
                "materialized": materialized,
                "online_present": present,
                "online_matches_latest_rows": same_online,
                "local_ms": timings,
                "train_rows": len(train),
            }
        )
    )
    say(
        f"done: {len(pinned.feature_refs)} pinned refs, ONNX twins "
        f"{[bool(mv.has_onnx) for mv in (pinned, onnx_version, sklearn_version)]}"
    )


if __name__ == "__main__":
    main()
