"""`milepost demo` runs the loop end to end on the embedded default."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

import milepost
from milepost import Client, RunStatus
from milepost.demo.data import LABEL, generate_customers
from milepost.demo.run import EXPERIMENT, run_demo


def test_dataset_is_seeded_and_realistic() -> None:
    a = generate_customers(2000, seed=3)
    b = generate_customers(2000, seed=3)
    assert a.equals(b)
    assert {"customer_id", "event_timestamp", "gender", LABEL} <= set(a.columns)
    assert 0.05 < a[LABEL].mean() < 0.4
    assert a["event_timestamp"].is_monotonic_increasing
    assert str(a["event_timestamp"].dt.tz) == "UTC"
    assert not generate_customers(2000, seed=4).equals(a)


def test_the_better_model_is_clearly_better_and_both_beat_the_base_rate() -> None:
    """The demo's story needs models worth promoting: on the held-out last 30 days the
    boosted trees beat the linear model clearly on ROC AUC (the gate's metric) and on PR
    AUC, and both are well above what no skill scores (0.5, and the base rate)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from milepost.demo.data import CATEGORICAL, time_split
    from milepost.demo.training import MODEL_NUMERIC, preprocess, scores

    frame = generate_customers(5000)
    frame["spend_per_ticket"] = frame["monthly_spend"] / (1 + frame["support_tickets"])
    train, test = time_split(frame)
    features = MODEL_NUMERIC + CATEGORICAL
    linear = Pipeline(
        [("prep", preprocess(True, MODEL_NUMERIC)), ("model", LogisticRegression(max_iter=500))]
    )
    trees = Pipeline(
        [
            ("prep", preprocess(False, MODEL_NUMERIC)),
            ("model", HistGradientBoostingClassifier(max_leaf_nodes=15, random_state=0)),
        ]
    )
    got = {}
    for name, model in (("linear", linear), ("trees", trees)):
        model.fit(train[features], train[LABEL])
        got[name] = scores(test[LABEL], model.predict_proba(test[features])[:, 1])
    base = got["trees"]["base_rate"]
    assert 0.05 < base < 0.2
    assert got["trees"]["roc_auc"] >= got["linear"]["roc_auc"] + 0.05, got
    assert got["trees"]["pr_auc"] >= got["linear"]["pr_auc"] + 0.05, got
    assert got["linear"]["roc_auc"] > 0.7 and got["linear"]["pr_auc"] > 2 * base, got
    assert got["trees"]["roc_auc"] > 0.8 and got["trees"]["pr_auc"] > 3 * base, got


def test_demo_runs_the_loop(tmp_path: Path) -> None:
    milepost.configure(home=tmp_path / "home")
    out = io.StringIO()
    result = run_demo(rows=1500, console=Console(file=out, width=120))
    text = out.getvalue()
    for n in range(1, 11):
        assert f"{n}/10" in text
    assert "Where everything went" in text
    c = Client()
    runs = c.search_runs(EXPERIMENT, max_results=10)
    assert {r.name for r in runs} >= {"logreg", "hgb"}
    assert all(r.status is RunStatus.FINISHED for r in runs)
    hgb = c.get_run(result["runs"]["hgb"])
    assert 0.5 < hgb.metrics["roc_auc"] <= 1.0
    assert len(c.get_metric_history(hgb.run_id, "train_loss")) > 5
    assert next(a.path for a in c.list_artifacts(hgb.run_id)) == "eval/confusion.json"
    inputs = milepost.get_runtime().data.inputs_of_run(hgb.run_id)
    assert [(i.ref, i.role) for i in inputs] == [
        ("churn.train@1", "train"),
        ("churn.test@1", "eval"),
    ]
    # features: point-in-time training data, pinned by the model, served online
    hgb_version = c.get_model_version("models:/churn/2")
    assert "customer_activity:v1:spend_per_ticket" in hgb_version.feature_refs
    assert result["features"]["consistent"]
    assert result["features"]["online"]["monthly_spend"] is not None
    assert "online read for customer" in text
    # the corrupted batch was rejected with a readable report and not registered
    assert result["bad_batch_rejected"]
    assert "FAIL customer_id not null" in text and "rejected, not registered" in text
    assert [d.name for d in milepost.data.list_datasets()] == [
        "churn.test",
        "churn.train",
        "customers",
    ]
    assert milepost.data.runs_using("churn.train@1")
    # the better model went through the gates and an approval into Production;
    # the worse candidate was refused
    best = max(result["scores"], key=lambda k: result["scores"][k]["roc_auc"])
    production = c.get_model_version("models:/churn/Production")
    assert production.run_id == result["runs"][best]
    assert result["promotion"]["refused_request"]
    to_production = [e for e in c.model_history("churn") if e.to_stage == "Production"]
    assert [e.actor for e in to_production] == ["ana", "ana"]  # the baseline, then the best
    assert to_production[-1].version == production.version
    assert "approves it" in text and "refused, registry unchanged" in text
    # served: the baseline, then the best as a canary that promoted itself; the slow forest
    # was rolled back on latency; the client never saw a failure
    served = result["serving"]
    assert served["canary"] == "succeeded" and served["faulty"] == "rolled_back"
    assert served["failed"] == 0 and served["requests"] > 100
    assert served["variants"].keys() >= {
        f"churn-v{to_production[0].version}",
        f"churn-v{production.version}",
        f"churn-v{served['faulty_version']}",
    }
    assert "rollback: automatic: canary p99" in text and "SHAP, the largest" in text
    spec, _ = milepost.get_runtime().serving.get("churn")
    assert [(v.name, v.role) for v in spec.variants] == [
        (f"churn-v{production.version}", "primary")
    ]
    assert result["audit_ok"] and c.verify_audit().ok
    # running it again reuses the experiment and adds runs
    run_demo(rows=500, console=Console(file=io.StringIO()))
    assert len(c.search_runs(EXPERIMENT, max_results=20)) == 2 * len(runs)
