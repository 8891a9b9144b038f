"""The demo's governance step: a fairness audit, a biased candidate the fairness gate
refuses, a decision explained from the log, the Production model's card, its lineage.

The biased candidate is what a team gets from a past retention campaign's records: the
campaign marked many women who stayed as churners, and the model was given ``gender`` as
an input. Its ROC AUC on the honest test set is not far off; its selection rates are.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

import milepost
from milepost.cards import write_card
from milepost.demo import features as demo_features
from milepost.demo.data import CATEGORICAL, LABEL, PROTECTED, customer_suite
from milepost.demo.promotion import MODEL, show_gates
from milepost.demo.serving import ENDPOINT
from milepost.demo.training import MODEL_NUMERIC, scores
from milepost.errors import GateFailed, MilepostError, NotFound
from milepost.governance import lineage_html
from milepost.promotion.gates import GateResult

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    from rich.console import Console

    from milepost.data import DatasetVersion
    from milepost.demo.serving import ModelServer
    from milepost.evaluation.fairness import FairnessResult
    from milepost.features import FeatureStore

__all__ = ["FAIRNESS_GATE", "governance_step"]

#: The gate the demo adds to Staging (so to every path into Production): selection rates
#: within ten points of each other across genders.
FAIRNESS_GATE: dict[str, Any] = {
    "kind": "fairness",
    "name": "fair selection by gender",
    "target": LABEL,
    "sensitive_features": [PROTECTED],
    "max_demographic_parity_difference": 0.10,
}
_CAMPAIGN_BIAS = 0.3  # share of the women who stayed that the old campaign marked churned
_FEATURES = [*MODEL_NUMERIC, *CATEGORICAL]


def _fairness_table(console: Console, audit: FairnessResult) -> None:
    table = Table("gender", "rows", "selected", "TPR", "FPR", "accuracy", "note")
    for g in audit.groups:
        table.add_row(
            str(g["group"]),
            f"{g['count']:,}",
            _pct(g["selection_rate"]),
            _pct(g["tpr"]),
            _pct(g["fpr"]),
            _pct(g["accuracy"]),
            _why_unreliable(g, audit.min_group_size),
        )
    console.print(table)
    s = audit.summary[PROTECTED]
    console.print(
        f"  demographic parity: difference {_num(s['demographic_parity_difference'])}, ratio "
        f"{_num(s['demographic_parity_ratio'])}; equalized odds: difference "
        f"{_num(s['equalized_odds_difference'])}, ratio {_num(s['equalized_odds_ratio'])} "
        "(fairlearn's definitions, over every group)"
    )


def _why_unreliable(group: dict[str, Any], least: int) -> str:
    if not group["unreliable"]:
        return ""
    if group["count"] < least:
        return f"unreliable: under {least} rows"
    return f"unreliable: under {least} positive or negative labels"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _biased_candidate(
    console: Console, store: FeatureStore, train_labels: pd.DataFrame, test: DatasetVersion
) -> int:
    """A candidate trained on a biased campaign's labels, with gender as an input."""
    rng = np.random.default_rng(3)
    with milepost.start_run(experiment="churn-demo", run_name="campaign-labels") as run:
        frame = store.get_historical_features(train_labels, demo_features.FEATURES)
        stayed_women = (frame[PROTECTED] == "female") & (frame[LABEL] == 0)
        marked = stayed_women & (rng.random(len(frame)) < _CAMPAIGN_BIAS)
        frame.loc[marked, LABEL] = 1
        train = milepost.data.register(
            "churn.train-campaign", frame, description="training rows, labels from a campaign"
        )
        milepost.data.validate(train, customer_suite(reference="customers"), strict=True)
        milepost.log_input(train, role="train")
        inputs, gender = [*_FEATURES, PROTECTED], PROTECTED
        model = Pipeline(
            [
                (
                    "prep",
                    ColumnTransformer(
                        [("cat", OneHotEncoder(handle_unknown="ignore"), [*CATEGORICAL, gender])],
                        remainder="passthrough",
                    ),
                ),
                ("model", HistGradientBoostingClassifier(max_iter=150, random_state=0)),
            ]
        )
        model.fit(frame[inputs], frame[LABEL])
        test_frame = test.to_pandas()
        metrics = scores(test_frame[LABEL], model.predict_proba(test_frame[inputs])[:, 1])
        milepost.log_metrics(metrics)
        version = milepost.log_model(
            model, MODEL, input_example=frame[inputs].head(5), description="campaign labels"
        )
    console.print(
        f"  a candidate trained on {train.ref} ({int(marked.sum()):,} women who stayed were "
        f"marked churned by an old campaign) with {PROTECTED} as an input: run "
        f"{run.run_id[:12]}, ROC AUC {metrics['roc_auc']:.3f} on {test.ref} → "
        f"{version.uri}"
    )
    return version.version


def _fairness_gate(console: Console, test: DatasetVersion, version: int) -> str | None:
    """Add the fairness gate to Staging; the biased candidate asks for Staging."""
    rt = milepost.get_runtime()
    client = milepost.Client()
    policy = rt.promotion.get_policy(MODEL).to_dict()
    policy["staging"] = [*policy["staging"], {**FAIRNESS_GATE, "dataset": test.ref}]
    client.set_promotion_policy(MODEL, policy)
    console.print(
        f"  the policy of {MODEL!r} now also needs, to enter Staging (and so Production), "
        f"selection rates by {PROTECTED} within 10 points on {test.ref}"
    )
    try:
        client.promote(MODEL, version, "Staging", reason="campaign model")
    except GateFailed as exc:
        show_gates(console, [GateResult(**g) for g in exc.details["gates"]])
        console.print(f"  → v{version} refused: it cannot reach Staging or Production")
        for _, gate in client.model_card(MODEL, version).failed_gates:
            console.print(f"  its model card says why: {gate.name}: {gate.message}")
        return str(exc.details["request_id"])
    console.print(f"  [red]v{version} passed the fairness gate[/]")
    return None


def _decision(console: Console, server: ModelServer, customers: list[int]) -> dict[str, Any]:
    """Mark the endpoint consequential; explain one of its decisions from the log."""
    client = milepost.Client()
    client.update_endpoint(ENDPOINT, consequential=True)
    console.print(
        f"  endpoint {ENDPOINT!r} is marked consequential: each answer is logged with its "
        "explanation"
    )
    rows = [{"customer_id": customers[0]}]
    deadline = time.monotonic() + 30
    answer = server.predict(rows)
    while not answer.get("decision_record") and time.monotonic() < deadline:
        answer = server.predict(rows)  # the replicas take the marking within a second
    record = None
    while record is None and time.monotonic() < deadline:
        try:  # read back from the log alone: no model is loaded
            record = client.get_decision(answer["request_id"])
        except NotFound:
            time.sleep(0.2)  # the replica writes its log each second
    if record is None:
        raise MilepostError("No decision record appeared within 30 s.")
    explanation = record.explanation or {}
    top = list(explanation.get("contributions", {}).items())[:3]
    total = (
        explanation["base_value"]
        + sum(explanation["contributions"].values())
        + explanation["other"]
    )
    console.print(
        f"  `milepost decisions show {record.request_id}`: customer {customers[0]}, "
        f"{record.uri}, prediction {record.prediction}"
    )
    console.print(
        f"    largest contributions ({explanation['output_space']}): "
        + ", ".join(f"{name} {value:+.3f}" for name, value in top),
        soft_wrap=True,
    )
    console.print(
        f"    base {explanation['base_value']:.3f} + every contribution = {total:.3f}, the "
        f"model's output {explanation['output']:.3f}"
    )
    return {
        "request_id": record.request_id,
        "version": record.version,
        "adds_up": abs(total - explanation["output"]) < 1e-6,
    }


def _card(console: Console, version: int, reports: Path) -> dict[str, Any]:
    client = milepost.Client()
    client.set_model_card_fields(
        MODEL,
        {
            "intended_use": "Rank current subscribers by churn risk for retention offers.",
            "out_of_scope_use": "Pricing, credit or any decision about a person without "
            "review; customers outside the subscription service.",
        },
        reason="written by the model's owner",
    )
    card = client.model_card(MODEL, version)
    paths = [
        write_card(card, reports / f"model-card-{MODEL}-v{version}.{suffix}")
        for suffix in ("md", "html", "cdx.json")
    ]
    console.print(
        f"  model card of {MODEL} v{version} (Production): {len(card.evaluations)} "
        f"evaluation(s), {len(card.fairness)} fairness audit(s), {len(card.promotions)} "
        f"promotion request(s), {len(card.deployments)} deployment(s); written by people: "
        f"{', '.join(sorted(card.fields))}; flagged missing: {', '.join(card.missing)}"
    )
    console.print(
        "  → " + ", ".join(str(p.name) for p in paths) + f" in {reports} (the .cdx.json is a "
        "CycloneDX 1.6 ML-BOM, validated against its schema)",
        soft_wrap=True,  # a path's length must not move the line breaks
    )
    return {"paths": [str(p) for p in paths], "missing": list(card.missing)}


def _lineage(console: Console, version: int, train: str, reports: Path) -> dict[str, Any]:
    client = milepost.Client()
    graph = client.lineage(f"models:/{MODEL}/{version}", direction="upstream", depth=2)
    kinds: dict[str, list[str]] = {}
    for node in graph.upstream():
        kinds.setdefault(node.kind, []).append(node.label)
    console.print(f"  lineage of {MODEL} v{version}, upstream (two steps):")
    for kind, labels in kinds.items():
        shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
        console.print(f"    {kind.replace('_', ' ')}: {shown}", markup=False)
    full = client.lineage(f"models:/{MODEL}/{version}")
    path = reports / f"lineage-{MODEL}-v{version}.html"
    path.write_text(lineage_html(full), encoding="utf-8")
    trained = client.list_models_trained_on(train, stage="Production")
    console.print(
        f"  Production models trained on {train}: "
        + (", ".join(n.label for n in trained) or "none")
        + f" · the whole graph ({len(full.nodes)} nodes): {path.name}"
    )
    return {"nodes": len(full.nodes), "trained_on": [n.ref for n in trained], "path": str(path)}


def governance_step(
    console: Console,
    server: ModelServer,
    store: FeatureStore,
    train_labels: pd.DataFrame,
    test: DatasetVersion,
    customers: list[int],
    reports: Path,
) -> dict[str, Any]:
    """Audit, refuse, explain, document, trace."""
    client = milepost.Client()
    production = client.get_model(MODEL).production_version
    if production is None:
        raise MilepostError("The demo has no Production model to govern.")
    audit = client.audit_fairness(f"models:/{MODEL}/{production}", test.ref, LABEL, [PROTECTED])
    console.print(
        f"  fairness audit of {MODEL} v{production} (Production) on {test.ref} by {PROTECTED} "
        f"(audit {audit.audit_id[:12]}, stored):"
    )
    _fairness_table(console, audit)
    candidate = _biased_candidate(console, store, train_labels, test)
    refused = _fairness_gate(console, test, candidate)
    decision = _decision(console, server, customers)
    card = _card(console, production, reports)
    datasets = client.get_model_version(MODEL, production).datasets
    train = next((d["ref"] for d in datasets if d.get("role") == "train"), f"{MODEL}.train@1")
    lineage = _lineage(console, production, train, reports)
    return {
        "production": production,
        "fairness": audit.summary[PROTECTED],
        "candidate": candidate,
        "refused_request": refused,
        "decision": decision,
        "card": card,
        "lineage": lineage,
    }
