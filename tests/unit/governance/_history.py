"""A realistic recorded history for the lineage tests, made through the public API.

- ``lineage.train@1`` (validated) trains ``churn`` v1 and v2 (runs using it as ``train``,
  ``lineage.test@1`` as ``eval``); ``lineage.train@2`` trains ``other`` v1.
- ``churn`` v1 is promoted to Production through a policy with a metric gate (an
  evaluation on ``lineage.test@1``), a data validation gate and a fairness gate (a
  fairness audit on ``lineage.test@1``); v2 stays in None.
- Endpoint ``lineage-ep`` tracks Production of churn; monitor ``lineage-mon`` watches it;
  trigger ``lineage-retrain`` listens to its drift alerts.
- Pipeline ``training`` (tests.unit.governance.lineage_steps) reads ``lineage.raw@1``,
  registers ``pipe.train@1`` and trains ``pipe_model`` v1 in a tracked step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

import milepost
from milepost import Client
from milepost.demo.data import CATEGORICAL, LABEL, NUMERIC

FEATURES = NUMERIC + CATEGORICAL
POLICY = {
    "production": [
        {
            "kind": "metric_vs_baseline",
            "dataset": "lineage.test@1",
            "target": LABEL,
            "primary": "roc_auc",
            "threshold": 0.5,
        },
        {"kind": "data_validation", "suite": "basic"},
        {
            "kind": "fairness",
            "dataset": "lineage.test@1",
            "target": LABEL,
            "sensitive_features": ["gender"],
            "max_demographic_parity_difference": 1.0,
        },
    ]
}


@dataclass
class History:
    """Ids of what was recorded."""

    runs: dict[str, str]  # "churn/1" -> run id
    request_id: str
    eval_id: str
    audit_id: str
    validation_id: str
    pipeline_run: str


def build(
    churn_models: dict[str, Any],
    frame: pd.DataFrame,
    *,
    pipeline: bool = True,
    run_name: str | None = None,
) -> History:
    """Record the history on the process's runtime (``run_name``: the name of the run that
    trains churn v1)."""
    train = milepost.data.register("lineage.train", frame.iloc[:1500])
    test = milepost.data.register("lineage.test", frame.iloc[2000:2600])
    train2 = milepost.data.register("lineage.train", frame.iloc[:1800])
    milepost.data.register("lineage.raw", frame.iloc[:1000])
    check = milepost.data.validate(
        train, {"name": "basic", "checks": [{"kind": "not_null", "column": "customer_id"}]}
    )
    runs = {}
    for model, key, data in (
        ("churn", "good", train),
        ("churn", "weak", train),
        ("other", "good", train2),
    ):
        name = run_name if not runs else None
        with milepost.start_run(experiment="lineage", run_name=name) as run:
            milepost.log_input(data, role="train")
            milepost.log_input(test, role="eval")
            mv = milepost.log_model(churn_models[key], model, input_example=frame[FEATURES].head(3))
        runs[f"{mv.name}/{mv.version}"] = run.run_id
    client = Client()
    client.set_promotion_policy("churn", POLICY)
    request = client.promote("churn", 1, "Production", reason="first model")
    eval_id = request.gates[0].details["candidate_eval"]
    audit_id = request.gates[2].details["audit_id"]
    client.create_endpoint("lineage-ep", "churn")
    client.create_monitor("lineage-mon", endpoint="lineage-ep", window="1h")
    client.add_trigger(
        "lineage-retrain", "tests.unit.governance.lineage_steps:training", on_drift="lineage-mon"
    )
    pipeline_run = ""
    if pipeline:
        from tests.unit.governance import lineage_steps

        result = milepost.run_pipeline(lineage_steps.training, {"raw": "lineage.raw@1"})
        assert result.status == "succeeded", result.error
        pipeline_run = result.run_id
    return History(runs, request.request_id, eval_id, audit_id, check.result_id, pipeline_run)
