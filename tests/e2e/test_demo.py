"""`milepost demo` runs the loop end to end on the embedded default."""

from __future__ import annotations

import io
import re
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
    assert len(to_production) == 2 and to_production[0].actor == "ana"  # the baseline
    assert to_production[-1].version == production.version
    # the best: approved by ana, then made Production by its canary's last step on the
    # endpoint that tracks Production, in the same transaction as the endpoint's primary
    best_request = c.get_promotion_request(to_production[-1].request_id or "")
    assert best_request.status == "completed" and best_request.endpoint == "churn"
    assert [g.message for g in best_request.gates if g.kind == "approval"] == ["approved by ana"]
    assert best_request.gates[-1].name == "canary on churn" and best_request.gates[-1].passed
    assert "approves it" in text and "refused, registry unchanged" in text
    # a refused request is never shown waiting for an approval
    refused = c.get_promotion_request(result["promotion"]["refused_request"])
    assert refused.status == "refused" and "pending" not in {g.status for g in refused.gates}
    # served: the baseline, then the best as a canary that promoted itself; the slow forest
    # was rolled back on latency; the client never saw a failure
    served = result["serving"]
    assert served["canary"] == "succeeded"
    assert served["faulty"] == "rolled_back", (
        "the faulty model must be fine offline (pass the Production gates) and fail in its "
        "canary; 'refused' means its offline gates refused it before any traffic"
    )
    assert served["failed"] == 0 and served["requests"] > 100
    assert served["variants"].keys() >= {
        f"churn-v{to_production[0].version}",
        f"churn-v{production.version}",
        f"churn-v{served['faulty_version']}",
    }
    assert "rollback: automatic: canary p99" in text and "SHAP, the largest" in text
    # the faulty forest took the same road: its gates passed, its canary failed on p99, and
    # the registry recorded that; it never reached Production
    faulty = [
        r
        for r in c.promotion_requests(status="rolled_back", model="churn")
        if r.version == served["faulty_version"]
    ]
    assert len(faulty) == 1 and faulty[0].gates[-1].message.startswith("automatic: canary p99")
    assert c.get_model_version("churn", served["faulty_version"]).stage != "Production"
    # the final table counts the client's window, variant by variant, as the client did
    assert "the prediction log and the client count the same requests, variant by variant" in text
    assert re.search(r"traffic from \d\d:\d\d:\d\d\.\d{3} to \d\d:\d\d:\d\d\.\d{3} UTC", text)
    # one way to write a latency: "p99 2.3 ms"
    assert re.search(r"p99 \d+\.\d ms vs \d+\.\d ms", text)
    assert not re.search(r"p99 \d+\.\d+ vs", text)
    spec, _ = milepost.get_runtime().serving.get("churn")
    assert [(v.name, v.role) for v in spec.variants] == [
        (f"churn-v{production.version}", "primary")
    ]
    assert result["audit_ok"] and c.verify_audit().ok
    # running it again reuses the experiment and adds runs
    run_demo(rows=500, console=Console(file=io.StringIO()))
    assert len(c.search_runs(EXPERIMENT, max_results=20)) == 2 * len(runs)
