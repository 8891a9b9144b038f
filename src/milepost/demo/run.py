"""``milepost demo``: the whole loop on the embedded default, one step at a time.

Generate data; version and validate it (rejecting a corrupted batch); define features
and build training data point-in-time, materialize them and read them online; train two
models with tracking and lineage (each pins the feature versions it used); compare them;
gate, approve and promote the baseline; serve it under live traffic (features read
server-side, SHAP explanations); promote the better model and roll it out as a canary
that promotes itself, see a worse candidate refused and a faulty (slow) model rolled back
automatically; monitor the endpoint, see an upstream shift detected, an alert raised and
a report written, and the drift alert fire a trigger whose retraining pipeline trains,
gates and canaries a better model into Production; share it all through the platform
server; start a project of one's own with ``milepost init`` and check it; check the
audit trail. Each new capability adds its step here.

Every run starts from an empty home (:mod:`milepost.demo.home`), so the story is the
same each time, and ends with commands that work as typed against that home.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Column, Table
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import milepost
from milepost.demo import features as demo_features
from milepost.demo import governance, monitoring, platform, promotion, retraining, serving
from milepost.demo import project as demo_project
from milepost.demo.data import (
    CATEGORICAL,
    LABEL,
    corrupted_batch,
    customer_suite,
    generate_customers,
    labels,
    time_split,
)
from milepost.demo.home import fresh_home, path_hint, point_at, use_home
from milepost.demo.promotion import MODEL
from milepost.demo.training import MODEL_NUMERIC, preprocess, roc_figure, scores
from milepost.errors import MilepostError, ValidationFailed
from milepost.serving import CanaryPolicy

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from milepost.data import DatasetVersion
    from milepost.features import FeatureStore

__all__ = ["run_demo"]

EXPERIMENT = "churn-demo"
TOTAL_STEPS = 15
FEATURES = MODEL_NUMERIC + CATEGORICAL


def _step(console: Console, n: int, total: int, title: str) -> None:
    console.rule(f"[bold]{n}/{total} {title}")


def _data_step(console: Console, frame: pd.DataFrame, reports: Path) -> tuple[DatasetVersion, bool]:
    customers = milepost.data.register("customers", frame, description="customer snapshots")
    console.print(
        f"  registered {customers.ref} ({customers.num_rows:,} rows, sha256 "
        f"{customers.content_hash[:12]})"
    )
    spend = customers.profile["monthly_spend"]
    console.print(
        f"  profile: monthly_spend mean {spend['mean']:.2f}, p50 {spend['quantiles']['0.5']:.2f}, "
        f"{spend['nulls']} nulls; plan top {customers.profile['plan']['top'][0]['value']!r}"
    )
    now = frame["event_timestamp"].max().to_pydatetime()
    suite = customer_suite(reference=customers.ref)
    result = milepost.data.validate(customers, suite, strict=True, now=now)
    console.print(f"  {customers.ref} passed suite {suite.name!r}: {result.summary}")
    console.print("  a new batch arrives, corrupted upstream (and drifted):")
    rejected = False
    try:
        milepost.data.validate(corrupted_batch(len(frame) // 4), suite, strict=True, now=now)
    except ValidationFailed as exc:
        rejected = True
        result = exc.result
        reports.mkdir(parents=True, exist_ok=True)
        html = reports / f"validation-{result.result_id[:12]}.html"
        html.write_text(result.to_html())
        for line in result.to_text().splitlines():
            console.print("    " + line, markup=False)
        console.print(f"  → rejected, not registered. HTML report: {html}")
    return customers, rejected


def _features_step(console: Console, frame: pd.DataFrame) -> tuple[FeatureStore, dict[str, Any]]:
    store = milepost.features.FeatureStore(demo_features.__name__)
    applied = store.apply()
    console.print(
        "  applied " + ", ".join(f"{p.view}:v{p.next_version} ({p.change})" for p in applied)
    )
    sample = labels(frame).tail(3)
    train = store.get_historical_features(sample, demo_features.FEATURES)
    console.print("  point-in-time rows for the last three labels (times in UTC):")
    # whole values and headers at 80 columns: a rule under the header, no vertical rules
    table = Table(
        *(
            Column(h, no_wrap=True)
            for h in ("customer", "label time", "plan", "monthly_spend", "spend_per_ticket")
        ),
        Column(LABEL, no_wrap=True),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for _, row in train.iterrows():
        table.add_row(
            str(row.customer_id),
            f"{row.event_timestamp:%m-%d %H:%M}",
            row.plan,
            f"{row.monthly_spend:.2f}",
            f"{row.spend_per_ticket:.2f}",
            str(row[LABEL]),
        )
    console.print(table)
    written = store.materialize_incremental()
    console.print(
        "  materialized to the online store: "
        + ", ".join(f"{k} {v:,} rows" for k, v in written.items())
    )
    newest = int(frame.sort_values("event_timestamp")["customer_id"].iloc[-1])
    online = store.get_online_features(
        [
            "customer_activity:monthly_spend",
            "customer_activity:spend_per_ticket",
            "customer_profile:plan",
        ],
        [{"customer_id": newest}, {"customer_id": 10**9}],
    )
    console.print(
        f"  online read for customer {newest} (and an unknown one): "
        + "; ".join(
            f"{f}={online.values[f][0]!r} ({online.statuses[f][0]}), {online.statuses[f][1]}"
            for f in online.features
        )
    )
    consistency = store.check_consistency("customer_activity", sample=50)
    console.print(
        f"  online vs offline for {consistency.checked} customers: "
        + ("consistent" if consistency.ok else f"MISMATCHES {consistency.mismatches}")
    )
    return store, {"online": online.rows()[0], "consistent": consistency.ok}


def _train(
    console: Console,
    store: FeatureStore,
    name: str,
    model: Pipeline,
    params: dict[str, Any],
    train_labels: pd.DataFrame,
    test_labels: pd.DataFrame,
    *,
    onnx: bool = True,
) -> tuple[str, dict[str, float], Any, int, DatasetVersion]:
    with milepost.start_run(experiment=EXPERIMENT, run_name=name, tags={"demo": "true"}) as run:
        train_df = store.get_historical_features(train_labels, demo_features.FEATURES)
        test_df = store.get_historical_features(test_labels, demo_features.FEATURES)
        train = milepost.data.register(
            "churn.train", train_df, description="point-in-time training set"
        )
        test = milepost.data.register("churn.test", test_df, description="point-in-time test set")
        for dataset in (train, test):  # the promotion policy checks this
            milepost.data.validate(dataset, customer_suite(reference="customers"), strict=True)
        milepost.log_input(train, role="train")
        milepost.log_input(test, role="eval")
        milepost.log_params({"model": name, **params, "features": ", ".join(FEATURES)})
        start = time.perf_counter()
        model.fit(train_df[FEATURES], train_df[LABEL])
        milepost.log_metric("fit_seconds", time.perf_counter() - start)
        estimator = model.named_steps["model"]
        # learning curves, one value per boosting iteration (what a training loop logs)
        for step, loss in enumerate(getattr(estimator, "train_score_", [])):
            milepost.log_metric("train_loss", -float(loss), step=step)
        for step, loss in enumerate(getattr(estimator, "validation_score_", [])):
            milepost.log_metric("val_loss", -float(loss), step=step)
        proba = model.predict_proba(test_df[FEATURES])[:, 1]
        metrics = scores(test_df[LABEL], proba)
        milepost.log_metrics(metrics)
        pred = (proba >= 0.5).astype(int)
        y = test_df[LABEL].to_numpy()
        milepost.log_dict(
            {
                "tp": int(((pred == 1) & (y == 1)).sum()),
                "fp": int(((pred == 1) & (y == 0)).sum()),
                "fn": int(((pred == 0) & (y == 1)).sum()),
                "tn": int(((pred == 0) & (y == 0)).sum()),
            },
            "eval/confusion.json",
        )
        version = milepost.log_model(
            model,
            MODEL,
            input_example=train_df[FEATURES].head(5),
            training_data=train_df[FEATURES],  # its reference profile, for monitoring
            onnx=onnx,
            description=f"{name} churn classifier",
        )
        twin = (
            "with a verified ONNX twin"
            if version.has_onnx
            else "(no ONNX twin: " + (version.onnx or {}).get("reason", "")[:60] + ")"
            if onnx
            else "(ONNX twin not requested)"
        )
        console.print(
            f"  {name}: run {run.run_id[:12]} · {train.ref} · ROC AUC {metrics['roc_auc']:.3f}, "
            f"PR AUC {metrics['pr_auc']:.3f} · {version.uri} {twin}, pins "
            f"{len(version.feature_refs)} feature refs"
        )
    return run.run_id, metrics, proba, version.version, test


def _compare_step(
    console: Console, test: DatasetVersion, runs: dict[str, tuple[str, dict[str, float], Any]]
) -> str:
    fig = roc_figure(test.to_pandas()[LABEL], {name: r[2] for name, r in runs.items()})
    client = milepost.Client()
    best_id = max(runs.values(), key=lambda r: r[1]["roc_auc"])[0]
    lr_id, gb_id = runs["logreg"][0], runs["hgb"][0]
    if fig is not None:
        with milepost.start_run(experiment=EXPERIMENT, run_name="comparison") as cmp_run:
            milepost.log_figure(fig, "roc.png")
            milepost.set_tags({"compared": f"{lr_id},{gb_id}", "best": best_id})
        console.print(f"  ROC curves logged with run {cmp_run.run_id[:12]} as roc.png")
    top = client.search_runs(
        EXPERIMENT,
        filter="params.model IN ('logreg', 'hgb')",
        order_by=["metrics.roc_auc DESC"],
        max_results=2,
    )
    rate = top[0].metrics["base_rate"]
    console.print(
        f"  on {test.ref} ({test.num_rows:,} customers, {rate:.1%} churned) a model with no "
        f"skill scores ROC AUC 0.5, PR AUC {rate:.3f} (the base rate) and balanced accuracy "
        f'0.5; answering "stays" every time gets accuracy {1 - rate:.3f}'
    )
    table = Table("run", "model", "ROC AUC", "PR AUC", "bal. acc.", "accuracy", "log loss")
    keys = ("roc_auc", "pr_auc", "balanced_accuracy", "accuracy", "log_loss")
    for r in top:
        table.add_row(
            r.run_id[:12], r.params.get("model", ""), *(f"{r.metrics[k]:.3f}" for k in keys)
        )
    console.print(table)
    history = client.get_metric_history(gb_id, "train_loss")
    if history:
        console.print(
            f"  hgb logged {len(history)} train_loss values: {history[0].value:.4f} → "
            f"{history[-1].value:.4f}"
        )
    return best_id


def _faulty_model(
    console: Console,
    store: FeatureStore,
    train_labels: pd.DataFrame,
    test_labels: pd.DataFrame,
) -> int:
    """A 300-tree forest registered without its ONNX twin: fine offline, slow online."""
    params = {"n_estimators": 300, "min_samples_leaf": 5, "random_state": 0}
    forest = Pipeline(
        [
            ("prep", preprocess(False, MODEL_NUMERIC)),
            ("model", RandomForestClassifier(**params)),
        ]
    )
    return _train(console, store, "forest", forest, params, train_labels, test_labels, onnx=False)[
        3
    ]


def _deploy_steps(
    console: Console,
    stack: contextlib.ExitStack,
    frame: pd.DataFrame,
    store: FeatureStore,
    data: tuple[pd.DataFrame, pd.DataFrame, DatasetVersion],
    *,
    worse: int,
    best: int,
) -> dict[str, Any]:
    """Steps 6-12: promote the baseline, serve it, canary the better model, roll back a
    faulty one, monitor, retrain, govern."""
    rt = milepost.get_runtime()
    client = milepost.Client()
    train_labels, test_labels, test = data
    _step(console, 6, TOTAL_STEPS, "Gate, approve and promote the baseline to Production")
    promotion.set_up(console, test)
    console.print(f"  v{worse}, the weaker model, goes first: no Production model to beat")
    if not promotion.promote(console, worse, reason="the baseline"):
        console.print(f"  then v{best}, the stronger one:")
        promotion.promote(console, best, reason="the baseline")
    if client.get_model(MODEL).production_version is None:
        raise MilepostError(
            "Neither model passed the Production gates; the demo needs one to serve.",
            hint="Run the demo with more rows (--rows).",
        )

    _step(console, 7, TOTAL_STEPS, "Serve Production: a model server, live traffic, explanations")
    # customers whose features are online (recent enough for the views' TTL); all of
    # them, in id order, so every run serves (and explains) the same customers
    known = sorted(
        store.online_entities("customer_activity", len(frame)), key=lambda k: k["customer_id"]
    )
    online = store.get_online_features(demo_features.FEATURES, known)
    customers = [
        row["customer_id"]
        for i, row in enumerate(known)
        if all(online.statuses[f][i] == "present" for f in online.features)
    ][-500:]
    if not customers:
        raise MilepostError("No customer has all of its features in the online store.")
    server, traffic = serving.serve_step(
        console, customers, log_dir=rt.settings.home / "logs", replicas=2
    )
    stack.callback(server.stop)
    stack.callback(traffic.stop)

    _step(console, 8, TOTAL_STEPS, "Promote the better model, roll it out as a canary")
    canary = None
    if client.get_model(MODEL).production_version == best:
        console.print(f"  v{best} is in Production already: nothing new to roll out")
    elif promotion.promote(console, best, reason="best ROC AUC of this round"):
        canary = serving.roll_out(
            console,
            best,
            CanaryPolicy(steps=[25, 50, 100], min_seconds=2, min_requests=50, max_p99_ratio=3.0),
            "the new Production model",
        )
        console.print(f"  → canary {canary}")
    refused = promotion.refuse(console, worse)

    _step(console, 9, TOTAL_STEPS, "A faulty model: slow online, rolled back automatically")
    faulty = _faulty_model(console, store, train_labels, test_labels)
    rollback = serving.roll_out(
        console,
        faulty,
        CanaryPolicy(steps=[25, 50, 100], min_seconds=2, min_requests=50),
        "a forest without its ONNX twin,",
    )
    primary = rt.serving.get(serving.ENDPOINT)[0].primary.name
    console.print(f"  → canary {rollback}: all traffic is back on {primary}, already warm")
    serving.status_table(console, serving.ENDPOINT)
    traffic.stop()
    console.print(f"  client side: {traffic.summary()}")

    _step(console, 10, TOTAL_STEPS, "Monitor: drift, late labels, an alert and a report")
    monitored = monitoring.monitor_step(
        console,
        server,
        store,
        frame,
        customers,
        rt.settings.home / "reports",
        on_monitor=retraining.add_trigger,
    )

    _step(console, 11, TOTAL_STEPS, "Retrain on drift: a trigger, the pipeline, a canary")
    retrained = retraining.retrain_step(console, server, store, frame, customers)

    _step(console, 12, TOTAL_STEPS, "Govern: fairness, a refused candidate, a decision, a card")
    governed = governance.governance_step(
        console, server, store, train_labels, test, customers, rt.settings.home / "reports"
    )
    server.stop()

    return {
        "refused_request": refused,
        "serving": {
            "canary": canary,
            "faulty": rollback,
            "faulty_version": faulty,
            "requests": traffic.ok,
            "failed": sum(traffic.failed.values()),
            "variants": dict(traffic.variants),
        },
        "monitoring": monitored,
        "retraining": retrained,
        "governance": governed,
    }


def run_demo(
    *, rows: int = 5000, home: Path | None = None, console: Console | None = None
) -> dict[str, Any]:
    """Run the demo in an empty home and return what it made (run ids, scores, locations).

    Every store (metadata, artifacts, online and offline features) goes inside the home,
    whatever the environment or ``milepost.toml`` say, and Milepost stays configured on it
    afterwards.

    Args:
        rows: customers in the generated dataset.
        home: an empty or new directory; default a new one under ``./.milepost-demo/``.
        console: where the narrative goes (default the terminal).

    Raises:
        InvalidInput: ``home`` is not empty.
    """
    console = console or Console(highlight=False)
    home = fresh_home() if home is None else home
    use_home(home)
    with contextlib.ExitStack() as stack:
        return _run(console, stack, rows)


def _run(console: Console, stack: contextlib.ExitStack, rows: int) -> dict[str, Any]:
    rt = milepost.get_runtime()
    home = rt.settings.home
    console.print(
        f"[bold]Milepost demo[/] in a new home, {home}: metadata {rt.db.dialect}, artifacts, "
        "online and offline features all inside it",
        soft_wrap=True,  # the home's length must not move the line breaks
    )

    _step(console, 1, TOTAL_STEPS, "Generate a customer-churn dataset (seeded, no downloads)")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    frame = generate_customers(rows, start=today - timedelta(days=120))
    console.print(
        f"  {len(frame):,} customer snapshots, {frame['event_timestamp'].min():%Y-%m-%d} to "
        f"{frame['event_timestamp'].max():%Y-%m-%d}; churn rate {frame[LABEL].mean():.1%}"
    )

    _step(console, 2, TOTAL_STEPS, "Version and validate the data")
    _, rejected = _data_step(console, frame, rt.settings.home / "reports")

    _step(
        console, 3, TOTAL_STEPS, "Define features, build training data point-in-time, serve online"
    )
    store, feature_info = _features_step(console, frame)

    _step(console, 4, TOTAL_STEPS, "Train two models with tracking and lineage")
    train_labels, test_labels = time_split(labels(frame))
    lr_params = {"C": 0.5, "max_iter": 500}
    lr = Pipeline(
        [("prep", preprocess(True, MODEL_NUMERIC)), ("model", LogisticRegression(**lr_params))]
    )
    gb_params = {
        "learning_rate": 0.08,
        "max_iter": 150,
        "max_leaf_nodes": 15,
        "early_stopping": True,
        "random_state": 0,
    }
    gb = Pipeline(
        [
            ("prep", preprocess(False, MODEL_NUMERIC)),
            ("model", HistGradientBoostingClassifier(**gb_params)),
        ]
    )
    lr_id, lr_scores, lr_proba, lr_version, test = _train(
        console, store, "logreg", lr, lr_params, train_labels, test_labels
    )
    gb_id, gb_scores, gb_proba, gb_version, _ = _train(
        console, store, "hgb", gb, gb_params, train_labels, test_labels
    )

    _step(console, 5, TOTAL_STEPS, "Compare the runs")
    best_id = _compare_step(
        console, test, {"logreg": (lr_id, lr_scores, lr_proba), "hgb": (gb_id, gb_scores, gb_proba)}
    )
    client = milepost.Client()
    (_, worse), (_, best) = sorted(
        [(lr_scores["roc_auc"], lr_version), (gb_scores["roc_auc"], gb_version)]
    )

    deployed = _deploy_steps(
        console, stack, frame, store, (train_labels, test_labels, test), worse=worse, best=best
    )

    _step(console, 13, TOTAL_STEPS, "Share: the platform server, a remote client, tokens, roles")
    shared = platform.platform_step(console, rt.settings.home / "logs")

    _step(console, 14, TOTAL_STEPS, "Your own project: milepost init, milepost check project")
    project = demo_project.project_step(console, home)

    _step(console, 15, TOTAL_STEPS, "Check the audit trail")
    report = client.verify_audit()
    status = "[green]intact[/]" if report.ok else "[red]TAMPERED[/]"
    console.print(f"  {report.checked} audit events, hash chain {status}")

    _closing(
        console, lr_id, gb_id, deployed["retraining"]["run"], deployed["governance"]["production"]
    )
    return {
        "runs": {"logreg": lr_id, "hgb": gb_id},
        "scores": {"logreg": lr_scores, "hgb": gb_scores},
        "best_run": best_id,
        "audit_ok": report.ok,
        "datasets": {"test": test.ref},
        "bad_batch_rejected": rejected,
        "features": feature_info,
        "promotion": {
            "production": client.get_model(MODEL).production_version,
            "refused_request": deployed["refused_request"],
        },
        "serving": deployed["serving"],
        "monitoring": deployed["monitoring"],
        "retraining": deployed["retraining"],
        "governance": deployed["governance"],
        "platform": shared,
        "project": project,
        "positive_rate": float(np.mean(frame[LABEL])),
        "home": str(rt.settings.home),
    }


def _closing(console: Console, lr_id: str, gb_id: str, run_id: str, production: int) -> None:
    """Where everything went, and commands to try that work as typed."""
    rt = milepost.get_runtime()
    home = rt.settings.home
    console.rule("[bold]Where everything went")
    console.print(f"  home:      {home}")
    console.print(f"  metadata:  {rt.db.uri}")
    console.print(f"  artifacts: {rt.blobs.uri}")
    console.print(f"  online features: {rt.settings.resolved_online_uri()}")
    console.print("  prediction log: Parquet segments in the artifacts, registered in the metadata")
    console.print("  try, in this shell:", markup=False)
    hint = path_hint()
    if hint:
        console.print(f"    # {hint}", markup=False, soft_wrap=True)
    for line in (
        *point_at(home),
        "milepost runs list -e churn-demo -o 'metrics.roc_auc DESC'",
        f"milepost runs compare {lr_id[:12]} {gb_id[:12]}",
        "milepost data show churn.train",
        "milepost features list",
        f"milepost models show {MODEL}",
        f"milepost models history {MODEL}",
        f"milepost endpoints show {serving.ENDPOINT}",
        f"milepost endpoints serve {serving.ENDPOINT} --port 8080",
        f"milepost monitor show {monitoring.MONITOR}",
        f"milepost monitor run {monitoring.MONITOR}",
        f"milepost triggers firings {retraining.TRIGGER}",
        "milepost pipelines runs",
        f"milepost pipelines show {run_id[:12]}",
        f"milepost fairness list models:/{MODEL}/{production}",
        f"milepost lineage models:/{MODEL}/{production} --upstream --depth 2",
        f"milepost models card {MODEL} {production} --format html --out card.html",
        f"milepost decisions list --endpoint {serving.ENDPOINT}",
        "milepost audit verify",
        "milepost audit export --out audit.jsonl",
    ):
        console.print(f"    {line}", markup=False, soft_wrap=True)
    console.print(
        f"  (each run of the demo gets a new home; this one stays in {home})", soft_wrap=True
    )
