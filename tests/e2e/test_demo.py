"""`milepost demo` runs the loop end to end on the embedded default."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import milepost
from milepost import Client, RunStatus
from milepost.demo.data import LABEL, generate_customers
from milepost.demo.home import fresh_home, path_hint, point_at, use_home
from milepost.demo.run import EXPERIMENT, run_demo
from milepost.errors import InvalidInput
from tests.e2e.test_cli import cli


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


def _story(text: str, home: Path) -> list[str]:
    """The narrative without what differs between runs by nature: the home, ids, times,
    ports and, while traffic flows (steps 7-12), every number; the canary's decision
    lines (how many checks a verdict took depends on timing) are reduced to their kind."""
    lines, live = [], False
    for raw in text.replace(str(home.resolve()), "<home>").splitlines():
        if re.match(r"─+ ([789]|1[012])/15", raw):
            live = True
        elif "Where everything went" in raw:
            live = False
        lines.append(_mask(raw, live))
    return [line for i, line in enumerate(lines) if i == 0 or line != lines[i - 1]]


def _mask(line: str, live: bool) -> str:
    line = re.sub(r"\b[0-9a-f]{8,64}\b", "<id>", line)  # ids, and the 8-digit short ones
    line = re.sub(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}(:\d{2})?", "<time>", line)
    line = re.sub(r"\b\d+\.\d+ s\b", "<n> s", line)  # durations
    line = re.sub(r"127\.0\.0\.1:\d+", "<address>", line)
    if live:
        if line.strip().startswith("largest contributions"):  # which features: the model's
            return "largest contributions"
        event = re.match(r"\s+(canary\.\w+|rollback):", line)
        line = event.group(1) if event else re.sub(r"\d[\d,.]*", "<n>", line)
        # live numbers change a table's column widths: compare cells, not padding
        line = re.sub(r"([─━]{2,})", "─", re.sub(r" {2,}", " ", line))
    return line.rstrip()


def test_demo_runs_the_loop(tmp_path: Path) -> None:
    out = io.StringIO()
    first = tmp_path / "first"
    result = run_demo(rows=1500, home=first, console=Console(file=out, width=120))
    text = out.getvalue()
    for n in range(1, 16):
        assert f"{n}/15" in text
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
        "churn.train-campaign",  # the biased candidate's (governance step)
        "customers",
    ]
    assert milepost.data.runs_using("churn.train@1")
    # the better model went through the gates and an approval into Production;
    # the worse candidate was refused (then retraining replaced it: see below)
    best = max(result["scores"], key=lambda k: result["scores"][k]["roc_auc"])
    retrained = result["retraining"]  # after monitoring, a retrained model replaced it
    production = c.get_model_version("churn", retrained["old_production"])
    assert production.run_id == result["runs"][best]
    assert result["promotion"]["refused_request"]
    to_production = [e for e in c.get_model_history("churn") if e.to_stage == "Production"]
    assert len(to_production) == 3 and to_production[0].actor == "ana"  # the baseline
    assert to_production[1].version == production.version
    # the best: approved by ana, then made Production by its canary's last step on the
    # endpoint that tracks Production, in the same transaction as the endpoint's primary
    best_request = c.get_promotion_request(to_production[1].request_id or "")
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
        for r in c.list_promotion_requests(status="rolled_back", model="churn")
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
    # the retrained version is primary; the one it replaced stays warm for a rollback
    assert sorted((v.name, v.role) for v in spec.variants) == [
        (f"churn-v{retrained['old_production']}", "standby"),
        (f"churn-v{retrained['new_production']}", "primary"),
    ]
    # monitoring: quiet on traffic like the training data; the upstream shift of
    # monthly_spend (and spend_per_ticket, computed from it) flagged, alerted, reported
    monitored = result["monitoring"]
    assert monitored["alerts_before"] == 0, text
    assert {"monthly_spend", "spend_per_ticket"} <= set(monitored["drifted"]), monitored
    assert monitored["alerts"] >= 2 and monitored["labelled"] > 0
    report = Path(monitored["report"])
    assert report.is_file() and report.with_suffix(".json").is_file()
    assert "monthly_spend" in report.read_text()
    stored = milepost.get_runtime().monitors.alerts("churn-health")
    assert {a.feature for a in stored} >= {"monthly_spend", "spend_per_ticket"}
    assert "logged (milepost.monitoring): ALERT" in text
    # retraining: the drift alert fired the trigger once; the pipeline ran every step on
    # the new outcomes; the retrained model beat Production on the same held-out rows,
    # passed the gates and was canaried into Production, registry and endpoint together
    firings = milepost.get_runtime().triggers.firings("retrain-on-drift")
    assert [f.firing_id for f in firings] == [retrained["firing"]]
    assert firings[0].reason.startswith("monitor churn-health raised alert")
    run = milepost.get_runtime().pipelines.get_run(retrained["run"])
    assert run.status == "succeeded" and run.trigger == retrained["firing"]
    assert list(retrained["steps"].values()) == ["succeeded"] * 7, retrained
    assert retrained["improvement"] > 0.005, retrained
    assert retrained["deployment"] == "canary started" and retrained["canary"] == "succeeded"
    assert retrained["new_production"] > retrained["old_production"] == production.version
    assert c.get_model("churn").production_version == retrained["new_production"]
    newest = c.get_model_version("churn", retrained["new_production"])
    assert newest.feature_refs == production.feature_refs
    assert "canary on churn" in [
        g.name for g in c.get_promotion_request(to_production[-1].request_id or "").gates
    ]
    assert "reason: monitor churn-health raised alert" in text
    assert "evaluate_model: candidate better" in text
    assert "milepost pipelines show" in text and "milepost triggers firings" in text
    _check_governance(c, result["governance"], text)
    _check_platform(c, result["platform"], text)
    _check_project(result["project"], first, text)
    assert result["audit_ok"] and c.verify_audit().ok
    # the models are worth promoting: the better one clearly, both above no skill
    scores = result["scores"]
    assert scores["hgb"]["roc_auc"] >= scores["logreg"]["roc_auc"] + 0.03, scores
    assert scores["hgb"]["pr_auc"] > 2 * scores["hgb"]["base_rate"], scores
    assert "a model with no skill scores ROC AUC 0.5, PR AUC" in text
    assert re.search(r"pr_auc \d\.\d{4} vs \d\.\d{4}, base rate 0\.\d{3}", text), text
    # where it all went, and the next commands point at this run's home
    assert result["home"] == str(first.resolve())
    assert f"export MILEPOST_HOME={first.resolve()}" in text

    # a second run: a new home, the same story, the first run left as it was
    out2 = io.StringIO()
    second = tmp_path / "second"
    run_demo(rows=1500, home=second, console=Console(file=out2, width=120))
    assert _story(out2.getvalue(), second) == _story(text, first)
    assert len(Client().search_runs(EXPERIMENT, max_results=20)) == len(runs)
    milepost.configure(home=first)
    assert len(Client().search_runs(EXPERIMENT, max_results=20)) == len(runs)
    with pytest.raises(InvalidInput, match="not an empty directory"):
        run_demo(rows=500, home=first, console=Console(file=io.StringIO()))
    assert len(Client().search_runs(EXPERIMENT, max_results=20)) == len(runs)


def _check_project(project: dict[str, Any], home: Path, text: str) -> None:
    """Step 14: `milepost init` wrote a project into the home; it passes `milepost check
    project` and `milepost check consistency`."""
    from milepost.project import load_project

    root = Path(project["root"])
    assert root == home.resolve() / "churn-project" and project["ok"], project
    assert {"milepost.toml", ".github/workflows/pr.yml", ".gitlab-ci.yml"} <= set(project["files"])
    assert load_project(root).config.pipeline == "churn_project.pipeline:release"
    assert f"milepost check project: all {project['checks']} checks passed" in text
    assert "milepost pipelines run churn_project.pipeline:release" in " ".join(text.split())
    # its features agree offline and online, with values compared (not only nulls)
    consistency = project["consistency"]
    assert set(consistency) == {"churn_project_activity:v1", "churn_project_offer:v1"}
    for view, (checked, with_values, ok) in consistency.items():
        assert ok and checked == 100 and with_values > 0, (view, checked, with_values)
        assert f"milepost check consistency: {view}: {checked} entities" in text


def _check_platform(c: Client, shared: dict[str, Any], text: str) -> None:
    """Step 13: a run logged through `milepost server` with a member token is stored with
    the token's user as author and every metric point; a viewer reads and is refused a
    write; the remote search answers what the embedded one does."""
    from milepost.demo.platform import EXPERIMENT as CI_EXPERIMENT

    run = c.get_run(shared["run"])
    assert run.user == shared["author"] == "ci-bot" and run.status == RunStatus.FINISHED
    assert run.params == {"trigger": "push to main"}
    assert shared["metric_points"] == 200 and shared["loss_points"] == 50
    assert len(c.get_metric_history(run.run_id, "val_loss")) == 50
    assert shared["same_search"] and [r.run_id for r in c.search_runs(CI_EXPERIMENT)] == [
        run.run_id
    ]
    assert shared["viewer_reads"] >= 2 and "needs the member role" in shared["viewer_refused"]
    flat = " ".join(text.split())  # the console wraps lines where the URL's length says
    assert "ci-bot (member), dashboard (viewer)" in flat
    assert "the same ids as embedded" in flat and "refused (403)" in flat
    created = [e.actor for e in c.list_audit_events(object_type="token")]
    assert len(created) == 2 and set(created) == {milepost.get_runtime().settings.actor()}


def _check_governance(c: Client, governed: dict[str, Any], text: str) -> None:
    """Step 12: the audit is stored, the biased candidate refused by the fairness gate
    alone, the decision explained from the log, the card written and valid, the lineage
    traced."""
    from milepost.cards import validate_bom

    production = governed["production"]
    audits = c.list_fairness_audits(f"models:/churn/{production}")
    assert [a.summary["gender"] for a in audits] == [governed["fairness"]]
    assert "unreliable: under 30" in text  # the small nonbinary group is flagged
    refused = c.get_promotion_request(governed["refused_request"])
    assert refused.status == "refused" and refused.version == governed["candidate"]
    failed = [g for g in refused.gates if not g.passed]
    assert [g.kind for g in failed] == ["fairness"], refused.gates
    assert "demographic parity difference" in failed[0].message
    assert c.get_model_version("churn", governed["candidate"]).stage == "None"
    decision = governed["decision"]
    assert decision["adds_up"] and decision["version"] == production
    record = c.get_decision(decision["request_id"])
    assert record.explanation is not None and record.uri == f"models:/churn/{production}"
    md, html, bom = (Path(p) for p in governed["card"]["paths"])
    assert "Intended use" in md.read_text() and "<svg" in html.read_text()
    validate_bom(bom.read_text())  # raises on a BOM the CycloneDX 1.6 schema refuses
    assert "limitations" in governed["card"]["missing"]
    assert "intended_use" not in governed["card"]["missing"]
    assert f"churn/{production}" in governed["lineage"]["trained_on"]
    assert governed["lineage"]["nodes"] > 10 and Path(governed["lineage"]["path"]).is_file()


def test_each_run_gets_a_new_home_with_every_store_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # settings that would send the demo's stores elsewhere are overridden, and the
    # closing lines say how to make the next commands read the demo's home
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("MILEPOST_METADATA_URI", f"sqlite:///{elsewhere}/other.db")
    (tmp_path / "milepost.toml").write_text(f'online_uri = "sqlite:///{elsewhere}/on.db"\n')
    first, second = fresh_home(), fresh_home()
    assert first != second and first.parent == second.parent == tmp_path / ".milepost-demo"
    rt = use_home(first)
    assert rt.db.uri == f"sqlite:///{first.resolve()}/milepost.db"
    assert rt.settings.resolved_online_uri() == f"sqlite:///{first.resolve()}/online.db"
    assert rt.settings.resolved_offline_uri() == str(first.resolve() / "offline")
    assert rt.blobs.uri.startswith(str(first.resolve()))
    assert point_at(first) == [
        f"export MILEPOST_HOME={first.resolve()}",
        "unset MILEPOST_METADATA_URI",
        f"export MILEPOST_ONLINE_URI=sqlite:///{first.resolve()}/online.db",
    ]
    with pytest.raises(InvalidInput, match="not an empty directory"):
        use_home(first)  # the database is in it now


def test_the_closing_lines_say_how_to_put_milepost_on_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir = Path(sys.executable).parent
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # as after `make demo`, no venv activated
    hint = path_hint()
    assert hint is not None and str(bin_dir / "milepost") in hint
    if (bin_dir / "activate").is_file():
        assert f"source {bin_dir / 'activate'}" in hint
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")  # `source .venv/bin/activate`
    assert path_hint() is None


def test_demo_refuses_a_home_in_use_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "milepost.db").write_text("")
    out = cli("demo", "--home", "used", cwd=tmp_path)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "used is not an empty directory" in out.stderr
    assert not (tmp_path / ".milepost-demo").exists()
