"""``milepost demo``: the whole loop on the embedded default, one step at a time.

Today the loop covers data and tracking: generate data, version and validate it (and
reject a corrupted batch), train two models with tracking and lineage, compare them,
register the models (with ONNX twins where they agree), gate, approve and promote the
better one, see a worse candidate refused, and check the audit trail. Each new
capability adds its step here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import milepost
from milepost.demo.data import (
    CATEGORICAL,
    LABEL,
    NUMERIC,
    corrupted_batch,
    customer_suite,
    generate_customers,
    time_split,
)
from milepost.errors import GateFailed, ValidationFailed
from milepost.promotion.gates import GateResult

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from milepost.data import DatasetVersion

__all__ = ["run_demo"]

EXPERIMENT = "churn-demo"
MODEL = "churn"
APPROVER = "ana"


def _policy(test: DatasetVersion) -> dict[str, Any]:
    return {
        "staging": [{"kind": "data_validation", "suite": "customers"}],
        "production": [
            {
                "kind": "metric_vs_baseline",
                "name": "better than Production",
                "dataset": test.ref,
                "target": LABEL,
                "primary": "roc_auc",
                "min_delta": 0.005,
                "guards": {"log_loss": 0.02},
                "threshold": 0.65,
            },
            {"kind": "data_validation", "suite": "customers"},
            {"kind": "approval", "role": "approver"},
        ],
    }


def _gates(console: Console, gates: list[Any]) -> None:
    table = Table("gate", "status", "detail")
    colours = {"passed": "green", "failed": "red", "error": "red", "pending": "yellow"}
    for g in gates:
        table.add_row(g.name, f"[{colours.get(g.status, '')}]{g.status}[/]", g.message)
    console.print(table)


def _promotion_step(
    console: Console, test: DatasetVersion, *, best: int, worse: int
) -> dict[str, Any]:
    rt = milepost.get_runtime()
    requester = rt.settings.actor()
    client = milepost.Client()
    client.set_promotion_policy(MODEL, _policy(test))
    if not rt.roles.has(APPROVER, "approver"):
        if not rt.roles.holders("admin"):
            rt.roles.grant(requester, "admin")  # bootstrap: the first admin (audited)
        rt.roles.grant(APPROVER, "approver")
    console.print(
        f"  policy for {MODEL!r}: Staging needs validated training data; Production needs a "
        f"better ROC AUC than Production on {test.ref}, validated data and an approver "
        f"({APPROVER})"
    )
    production = rt.models.get_model(MODEL).production_version
    client.promote(MODEL, best, "Staging", reason="best ROC AUC of this training round")
    try:
        request = client.promote(MODEL, best, "Production", reason="best ROC AUC of this round")
    except GateFailed as exc:  # e.g. a re-run whose models are no better than Production
        _gates(console, [GateResult(**g) for g in exc.details["gates"]])
        console.print(f"  → v{best} refused; Production stays v{production}")
        return {"production": production, "refused_request": exc.details["request_id"]}
    _gates(console, request.gates)
    if request.status == "pending_approval":
        console.print(
            f"  {requester} asked; request {request.request_id[:12]} waits for "
            f"{APPROVER}, who approves it:"
        )
        approver = milepost.configure(
            home=rt.settings.home, metadata_uri=rt.db.uri, artifact_uri=rt.blobs.uri, user=APPROVER
        )
        request = milepost.Client(approver).approve(
            request.request_id, reason="metrics and data OK"
        )
        milepost.configure(
            home=rt.settings.home, metadata_uri=rt.db.uri, artifact_uri=rt.blobs.uri, user=requester
        )
        client = milepost.Client()
    console.print(
        f"  → {MODEL} v{best} is in Production"
        + (f" (v{production} archived)" if production else "")
    )
    console.print(f"  a worse candidate (v{worse}) asks for Production:")
    refused = None
    try:
        client.promote(MODEL, worse, "Production", reason="second model of this round")
    except GateFailed as exc:
        refused = exc.details["request_id"]
        _gates(console, [GateResult(**g) for g in exc.details["gates"]])
        console.print(f"  → refused, registry unchanged (request {refused[:12]})")
    history = client.model_history(MODEL)
    table = Table("when (UTC)", "version", "from", "to", "by", "reason")
    for e in history[-4:]:
        table.add_row(
            datetime.fromtimestamp(e.at / 1000, tz=UTC).strftime("%H:%M:%S"),
            str(e.version),
            e.from_stage,
            e.to_stage,
            e.actor,
            e.reason or "",
        )
    console.print(table)
    return {"production": client.get_model(MODEL).production_version, "refused_request": refused}


def _step(console: Console, n: int, total: int, title: str) -> None:
    console.rule(f"[bold]{n}/{total} {title}")


def _scores(y: Any, proba: Any) -> dict[str, float]:
    pred = (proba >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred)),
        "roc_auc": float(roc_auc_score(y, proba)),
        "log_loss": float(log_loss(y, proba)),
        "brier": float(brier_score_loss(y, proba)),
    }


def _preprocess(scale: bool) -> ColumnTransformer:
    numeric: Any = StandardScaler() if scale else "passthrough"
    return ColumnTransformer(
        [
            ("num", numeric, NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )


def _roc_figure(y: Any, curves: dict[str, Any]) -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        return None
    fig, ax = plt.subplots(figsize=(4, 4))
    for label, proba in curves.items():
        fpr, tpr, _ = roc_curve(y, proba)
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _train(
    console: Console,
    name: str,
    model: Pipeline,
    params: dict[str, Any],
    train: DatasetVersion,
    test: DatasetVersion,
) -> tuple[str, dict[str, float], Any, int]:
    features = NUMERIC + CATEGORICAL
    train_df, test_df = train.to_pandas(), test.to_pandas()
    with milepost.start_run(experiment=EXPERIMENT, run_name=name, tags={"demo": "true"}) as run:
        milepost.log_input(train, role="train")
        milepost.log_input(test, role="eval")
        milepost.log_params({"model": name, **params, "features": ",".join(features)})
        start = time.perf_counter()
        model.fit(train_df[features], train_df[LABEL])
        milepost.log_metric("fit_seconds", time.perf_counter() - start)
        estimator = model.named_steps["model"]
        # learning curves, one value per boosting iteration (what a training loop logs)
        for step, loss in enumerate(getattr(estimator, "train_score_", [])):
            milepost.log_metric("train_loss", -float(loss), step=step)
        for step, loss in enumerate(getattr(estimator, "validation_score_", [])):
            milepost.log_metric("val_loss", -float(loss), step=step)
        proba = model.predict_proba(test_df[features])[:, 1]
        scores = _scores(test_df[LABEL], proba)
        milepost.log_metrics(scores)
        pred = (proba >= 0.5).astype(int)
        y = test_df[LABEL].to_numpy()
        confusion = {
            "tp": int(((pred == 1) & (y == 1)).sum()),
            "fp": int(((pred == 1) & (y == 0)).sum()),
            "fn": int(((pred == 0) & (y == 1)).sum()),
            "tn": int(((pred == 0) & (y == 0)).sum()),
        }
        milepost.log_dict(confusion, "eval/confusion.json")
        version = milepost.log_model(
            model,
            MODEL,
            input_example=train_df[features].head(5),
            onnx=True,
            description=f"{name} churn classifier",
        )
        onnx = (
            "with a verified ONNX twin"
            if version.has_onnx
            else "(no ONNX twin: " + (version.onnx or {}).get("reason", "")[:60] + ")"
        )
        console.print(
            f"  {name}: run {run.run_id[:12]} · trained on {train.ref} · roc_auc "
            f"{scores['roc_auc']:.3f} · registered {version.uri} {onnx}"
        )
    return run.run_id, scores, proba, version.version


def _data_step(
    console: Console, frame: pd.DataFrame, reports: Path
) -> tuple[DatasetVersion, DatasetVersion, bool]:
    train_df, test_df = time_split(frame)
    train = milepost.data.register("churn.train", train_df, description="customers, days 1-90")
    test = milepost.data.register("churn.test", test_df, description="customers, days 91-120")
    console.print(
        f"  registered {train.ref} ({train.num_rows:,} rows, sha256 {train.content_hash[:12]}) "
        f"and {test.ref} ({test.num_rows:,} rows)"
    )
    spend = train.profile["monthly_spend"]
    console.print(
        f"  profile: monthly_spend mean {spend['mean']:.2f}, p50 {spend['quantiles']['0.5']:.2f}, "
        f"{spend['nulls']} nulls; plan top {train.profile['plan']['top'][0]['value']!r}"
    )
    now = frame["event_timestamp"].max().to_pydatetime()
    suite = customer_suite(reference=train.ref)
    for version in (train, test):
        result = milepost.data.validate(version, suite, strict=True, now=now)
        console.print(
            f"  {version.ref} passed suite {suite.name!r}: "
            f"{len(result.checks)}/{len(result.checks)} checks"
        )

    console.print("  a new batch arrives, corrupted upstream (and drifted):")
    batch = corrupted_batch(len(test_df))
    rejected = False
    try:
        milepost.data.validate(batch, suite, strict=True, now=now)
    except ValidationFailed as exc:
        rejected = True
        result = exc.result
        reports.mkdir(parents=True, exist_ok=True)
        html = reports / f"validation-{result.result_id[:12]}.html"
        html.write_text(result.to_html())
        for line in result.to_text().splitlines():
            console.print("    " + line, markup=False)
        console.print(f"  → rejected, not registered. HTML report: {html}")
    return train, test, rejected


def run_demo(*, rows: int = 5000, console: Console | None = None) -> dict[str, Any]:
    """Run the demo and return what it made (run ids, scores, locations)."""
    console = console or Console(highlight=False)
    rt = milepost.get_runtime()
    total = 6
    console.print(f"[bold]Milepost demo[/] · metadata {rt.db.dialect} · artifacts {rt.blobs.uri}")

    _step(console, 1, total, "Generate a customer-churn dataset (seeded, no downloads)")
    frame = generate_customers(rows)
    console.print(
        f"  {len(frame):,} customers, {frame['event_timestamp'].min():%Y-%m-%d} to "
        f"{frame['event_timestamp'].max():%Y-%m-%d}; churn rate {frame[LABEL].mean():.1%}"
    )

    _step(console, 2, total, "Version and validate the data")
    train, test, rejected = _data_step(console, frame, rt.settings.home / "reports")

    _step(console, 3, total, "Train two models with tracking and lineage")
    lr_params = {"C": 0.5, "max_iter": 500}
    lr = Pipeline([("prep", _preprocess(True)), ("model", LogisticRegression(**lr_params))])
    gb_params = {
        "learning_rate": 0.08,
        "max_iter": 150,
        "max_leaf_nodes": 15,
        "early_stopping": True,
        "random_state": 0,
    }
    gb = Pipeline(
        [("prep", _preprocess(False)), ("model", HistGradientBoostingClassifier(**gb_params))]
    )
    lr_id, lr_scores, lr_proba, lr_version = _train(console, "logreg", lr, lr_params, train, test)
    gb_id, gb_scores, gb_proba, gb_version = _train(console, "hgb", gb, gb_params, train, test)
    test_labels = test.to_pandas()[LABEL]

    _step(console, 4, total, "Compare the runs")
    fig = _roc_figure(test_labels, {"logreg": lr_proba, "hgb": gb_proba})
    client = milepost.Client()
    best_id = max((lr_id, lr_scores), (gb_id, gb_scores), key=lambda p: p[1]["roc_auc"])[0]
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
    table = Table("run", "model", "roc_auc", "accuracy", "f1", "log_loss", "brier")
    for r in top:
        m = r.metrics
        table.add_row(
            r.run_id[:12],
            r.params.get("model", ""),
            *(f"{m[k]:.4f}" for k in ("roc_auc", "accuracy", "f1", "log_loss", "brier")),
        )
    console.print(table)
    history = client.get_metric_history(gb_id, "train_loss")
    if history:
        console.print(
            f"  hgb logged {len(history)} train_loss values: {history[0].value:.4f} → "
            f"{history[-1].value:.4f}"
        )

    _step(console, 5, total, "Gate, approve and promote to Production")
    by_auc = sorted([(lr_scores["roc_auc"], lr_version), (gb_scores["roc_auc"], gb_version)])
    promotion = _promotion_step(console, test, best=by_auc[-1][1], worse=by_auc[0][1])

    _step(console, 6, total, "Check the audit trail")
    report = client.verify_audit()
    status = "[green]intact[/]" if report.ok else "[red]TAMPERED[/]"
    console.print(f"  {report.checked} audit events, hash chain {status}")

    console.rule("[bold]Where everything went")
    console.print(f"  metadata:  {rt.db.uri}")
    console.print(f"  artifacts: {rt.blobs.uri}")
    console.print("  try: milepost runs list -e churn-demo -o 'metrics.roc_auc DESC'")
    console.print(f"       milepost runs compare {lr_id[:12]} {gb_id[:12]}")
    console.print(f"       milepost data show {train.ref}")
    console.print(f"       milepost models show {MODEL} · milepost models history {MODEL}")
    console.print("       milepost audit verify")
    return {
        "runs": {"logreg": lr_id, "hgb": gb_id},
        "scores": {"logreg": lr_scores, "hgb": gb_scores},
        "best_run": best_id,
        "audit_ok": report.ok,
        "datasets": {"train": train.ref, "test": test.ref},
        "bad_batch_rejected": rejected,
        "promotion": promotion,
        "positive_rate": float(np.mean(frame[LABEL])),
    }
