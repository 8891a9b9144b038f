"""The MLflow half of ``benchmarks/registry.py``; runs in ``benchmarks/.venv-mlflow``.

Usage: ``python _mlflow_registry_worker.py CONFIG.json``. The config gives the number of
repetitions and where to write the results (JSON). ``MLFLOW_TRACKING_URI`` (a SQLite file
in a fresh directory) comes from the environment; the caller also makes that directory
the working directory, so MLflow's artifacts go to ``./mlruns`` there. Progress goes to
stdout, MLflow's own logging to stderr.

Only the standard library, MLflow, scikit-learn and skops are imported, plus the
training data and pipeline from ``registry.py`` (its module level needs only the
standard library), so both tools log exactly the same model.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
import skops
from mlflow.tracking import MlflowClient
from registry import (
    ALIAS,
    CHECK_ROWS,
    EXAMPLE_ROWS,
    MODEL_NAME,
    frame_fingerprint,
    make_frame,
    make_pipeline,
    summarize,
)


def say(text: str) -> None:
    print(text, flush=True)


def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = call(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    n = config["repetitions"]
    results: dict[str, Any] = {
        "version": mlflow.__version__,
        "sklearn_version": sklearn.__version__,
        "skops_version": skops.__version__,
    }
    X, y = make_frame()
    pipe = make_pipeline().fit(X, y)
    example = X.iloc[:EXAMPLE_ROWS]
    results["data_fingerprint"] = frame_fingerprint(X, y)
    results["reference_predictions"] = pipe.predict(X.iloc[:CHECK_ROWS]).tolist()
    mlflow.set_experiment("bench")
    client = MlflowClient()
    requirements = [
        f"mlflow=={mlflow.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"skops=={skops.__version__}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
    ]

    say("log_model, default (infers pip requirements)")
    default_s, default_info = [], None
    for _ in range(config["default_log_repetitions"] + 1):  # the first is the warm-up
        with mlflow.start_run():
            default_info, seconds = timed(
                mlflow.sklearn.log_model, pipe, name="model", input_example=example
            )
        default_s.append(seconds)
    results["cold_log_model_ms"] = default_s[0] * 1000
    results["log_model_default"] = summarize(default_s[1:])
    assert default_info is not None
    deps = Path(mlflow.pyfunc.get_model_dependencies(default_info.model_uri))
    results["inferred_requirements"] = [
        line.strip() for line in deps.read_text().splitlines() if line.strip()
    ]

    say("log_model with explicit pip_requirements, then register_model")
    log_s, register_s, infos, registered = [], [], [], []
    for _ in range(n + 1):
        with mlflow.start_run():
            info, log_seconds = timed(
                mlflow.sklearn.log_model,
                pipe,
                name="model",
                input_example=example,
                pip_requirements=requirements,
            )
            mv, reg_seconds = timed(mlflow.register_model, info.model_uri, MODEL_NAME)
        log_s.append(log_seconds)
        register_s.append(reg_seconds)
        infos.append(info)
        registered.append(mv.version)
    results["log_model_explicit"] = summarize(log_s[1:])
    results["register"] = summarize(register_s[1:])
    results["log_and_register"] = summarize(
        [a + b for a, b in zip(log_s[1:], register_s[1:], strict=True)]
    )

    say("register, raw insert (MlflowClient.create_model_version)")
    insert_s = [
        timed(
            client.create_model_version,
            MODEL_NAME,
            source=info.model_uri,
            run_id=info.run_id,
            model_id=info.model_id,
        )[1]
        for info in infos
    ]
    results["register_insert"] = summarize(insert_s[1:])

    say("set alias")
    alias_s = [
        timed(client.set_registered_model_alias, MODEL_NAME, ALIAS, v)[1] for v in registered
    ]
    results["set_alias"] = summarize(alias_s[1:])

    say("stage transition (transition_model_version_stage)")
    transition_s = [
        timed(client.transition_model_version_stage, MODEL_NAME, v, "Staging")[1]
        for v in registered
    ]
    results["transition"] = summarize(transition_s[1:])

    uri = f"models:/{MODEL_NAME}@{ALIAS}"
    for flavor, module in (("sklearn", mlflow.sklearn), ("pyfunc", mlflow.pyfunc)):
        say(f"load by alias ({flavor}), predict one row")
        load_s, predict_s = [], []
        for _ in range(n + 1):
            loaded, seconds = timed(module.load_model, uri)
            load_s.append(seconds)
            predict_s.append(timed(loaded.predict, X.iloc[:1])[1])
        results[f"load_{flavor}"] = summarize(load_s[1:])
        results[f"predict_one_{flavor}"] = summarize(predict_s[1:])
        results[f"{flavor}_predictions"] = np.asarray(loaded.predict(X.iloc[:CHECK_ROWS])).tolist()

    versions = list(client.search_model_versions(f"name = '{MODEL_NAME}'", max_results=10_000))
    results["check"] = {
        "versions": len(versions),
        "staging": sum(v.current_stage == "Staging" for v in versions),
        "alias_version": int(client.get_model_version_by_alias(MODEL_NAME, ALIAS).version),
        "expected_alias_version": int(registered[-1]),
        "predictions": results.pop("sklearn_predictions"),
        "pyfunc_predictions": results.pop("pyfunc_predictions"),
    }
    Path(config["out"]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
