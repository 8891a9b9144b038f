"""Every public record has a short one-line repr and a ``to_dict()`` derived from its fields.

``RECORDS`` holds an example of each record type the tracking, models, promotion,
evaluation, serving and features packages return; ``test_every_public_record_is_here``
fails when a package exports a new record that is not in it, so each new type is
checked the day it is added.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from datetime import timedelta
from typing import Any

import pydantic
import pytest

from milepost._records import record_dict
from milepost.cards import CardDataset, CardDeployment, CardField, ModelCard
from milepost.data import (
    CheckResult,
    ColumnSchema,
    DatasetInput,
    DatasetRow,
    DatasetVersion,
)
from milepost.evaluation import EvaluationResult, FairnessResult
from milepost.features import (
    ConsistencyReport,
    DatasetSource,
    Entity,
    FeatureView,
    Field,
    OnDemandFeatureView,
    OnlineResponse,
    PlanItem,
)
from milepost.governance import (
    LineageEdge,
    LineageGraph,
    LineageNode,
    RoleGrant,
    VerifyReport,
)
from milepost.models import ColumnSpec, ModelVersion, RegisteredModel, Signature, StageEvent
from milepost.models.models import TrustedType
from milepost.pipelines import (
    Firing,
    Link,
    OutputRef,
    PipelineRun,
    PipelineSummary,
    PlannedStep,
    StepResult,
    StepRun,
    Trigger,
)
from milepost.promotion import DeployPolicy, GateResult, PromotionPolicy, PromotionRequest
from milepost.serving import (
    CanaryPolicy,
    Decision,
    DecisionRecord,
    EndpointSpec,
    PruneReport,
    Rollout,
    Track,
    Variant,
    VariantStats,
)
from milepost.serving.spec import DeploymentEvent
from milepost.stores.audit import AuditEvent, StoredEvent
from milepost.tracking import ArtifactInfo, Environment, Experiment, Metric, Run, RunStatus
from milepost.tracking.models import PagedList

RUN_ID = "abc123def456" + "0" * 20
SIGNATURE = Signature(
    inputs=[ColumnSpec("age", "integer"), ColumnSpec(f"x{'y' * 60}", "float", nullable=True)],
    outputs=[ColumnSpec("churned", "integer")],
)
GATE = GateResult(
    name="better than Production",
    kind="metric_vs_baseline",
    status="passed",
    message="roc_auc 0.8490 vs Production v1 0.7715: +0.0775 >= 0.005; " * 3,
    details={"candidate": 0.849, "improvement": float("nan")},
)
LINEAGE_NODE = LineageNode("model_version", "churn/3", "churn/3", {"stage": "Production"})
CANARY = Variant(name="churn-v3", model="churn", version=3, role="canary", weight=25)
PRIMARY = Variant(name="churn-v2", model="churn", version=2, role="primary")
CUSTOMER = Entity("customer", join_keys=["customer_id"])
VIEW = FeatureView(
    name="customer_activity",
    entity=CUSTOMER,
    source=DatasetSource("customers"),
    timestamp_field="event_timestamp",
    ttl=timedelta(days=30),
    schema=[Field(f"feature_{i}") for i in range(30)],
)

RECORDS: dict[type, tuple[Any, str]] = {
    Run: (
        Run(
            run_id=RUN_ID,
            experiment_id=1,
            name="hgb",
            status=RunStatus.FINISHED,
            start_time=1,
            end_time=2,
            user="ana",
            parent_run_id=None,
            source="train.py",
            git_commit=None,
            git_dirty=None,
            error=None,
            env_hash=None,
            params={"model": "hgb"},
            metrics={"roc_auc": 0.85, "f1": 0.4, "val_loss": float("inf")},
        ),
        "Run(abc123def456 'hgb' FINISHED, 3 metrics)",
    ),
    Experiment: (
        Experiment(1, "churn-demo", "active", None, "ana", 1, 1),
        "Experiment(1 'churn-demo' active)",
    ),
    Metric: (Metric("train_loss", 0.14433712, 81, 5), "Metric(train_loss=0.144337 step 81)"),
    Environment: (
        Environment("e" * 64, "3.11.7", "Linux", "p" * 64, ["numpy==2.0"] * 150),
        "Environment(python 3.11.7, 150 packages, eeeeeeeeeeee)",
    ),
    ArtifactInfo: (
        ArtifactInfo("eval/confusion.json", "d" * 64, 41193),
        "ArtifactInfo(eval/confusion.json, 41,193 bytes, sha256 dddddddddddd)",
    ),
    ColumnSpec: (ColumnSpec("age", "integer", nullable=True), "ColumnSpec(age integer, nullable)"),
    Signature: (SIGNATURE, None),
    ModelVersion: (
        ModelVersion(
            name="churn",
            version=3,
            stage="Production",
            flavor="sklearn",
            run_id=RUN_ID,
            author="ana",
            created_at=1,
            stage_changed_at=2,
            files={"model.skops": "f" * 64},
            signature=SIGNATURE,
            input_example=[{"age": 40}],
            metrics={"roc_auc": 0.85},
            datasets=[{"ref": "churn.train@1", "role": "train"}],
            feature_refs=["customer_activity:v1:monthly_spend"],
            trusted_types=[],
            onnx=None,
            env_hash=None,
            code_version=None,
            description="a long description " * 20,
            version_id=17,
        ),
        "ModelVersion(churn/3 Production, sklearn)",
    ),
    RegisteredModel: (
        RegisteredModel("churn", None, "ana", 1, 2, 3, {"Production": [2]}, {}, True),
        "RegisteredModel(churn, latest v3, Production v2)",
    ),
    StageEvent: (
        StageEvent("churn", 2, "Staging", "Production", "ana", "better", None, 5),
        "StageEvent(churn/2 Staging -> Production by ana)",
    ),
    TrustedType: (
        TrustedType("mypkg.Doubler", "ana", 1, "safe"),
        "TrustedType(mypkg.Doubler by ana)",
    ),
    GateResult: (GATE, None),
    PromotionRequest: (
        PromotionRequest(
            request_id="1a2b3c4d5e6f" + "0" * 20,
            model="churn",
            version=2,
            target_stage="Production",
            status="pending_approval",
            requested_by="root",
            reason="best",
            created_at=1,
            baseline_version=1,
            gates=[GATE, dataclasses.replace(GATE, name="approval", status="pending")],
        ),
        "PromotionRequest(1a2b3c4d5e6f churn/2 -> Production pending_approval, 1/2 gates passed)",
    ),
    PromotionPolicy: (PromotionPolicy(), "PromotionPolicy(Staging: none; Production: none)"),
    RoleGrant: (
        RoleGrant("bob", "approver", "alice", 1_700_000_000_000),
        "RoleGrant(actor='bob', role='approver', granted_by='alice', granted_at=1700000000000)",
    ),
    DeployPolicy: (
        DeployPolicy(automatic=True, endpoint="churn", steps=[50, 100], min_seconds=2),
        "DeployPolicy(automatic canary on 'churn': 50% → 100%, each step >= 2 s and >= 100 "
        "canary requests)",
    ),
    EvaluationResult: (
        EvaluationResult(
            eval_id="e" * 32,
            model_uri="models:/churn/2",
            dataset_ref="churn.test@1",
            task="classification",
            target="churned",
            num_rows=1255,
            metrics={"accuracy": 0.9, "roc_auc": 0.849, "pr_auc": None},
        ),
        "EvaluationResult(models:/churn/2 on churn.test@1, 1,255 rows, roc_auc 0.849)",
    ),
    FairnessResult: (
        FairnessResult(
            audit_id="f" * 32,
            model_uri="models:/churn/2",
            dataset_ref="churn.test@1",
            target="churned",
            sensitive_features=["gender"],
            summary={
                "gender": {
                    "demographic_parity_difference": 0.05,
                    "demographic_parity_ratio": 0.62,
                    "equalized_odds_difference": 0.1,
                    "equalized_odds_ratio": None,
                }
            },
            groups=[
                {
                    "feature": "gender",
                    "group": "female",
                    "count": 500,
                    "positives": 60,
                    "selection_rate": 0.1,
                    "tpr": 0.5,
                    "fpr": 0.04,
                    "accuracy": 0.9,
                    "unreliable": False,
                }
            ],
            num_rows=1000,
            min_group_size=30,
        ),
        "FairnessResult(models:/churn/2, gender: DP ratio 0.620)",
    ),
    Variant: (CANARY, "Variant(churn-v3 canary 25%, models:/churn/3)"),
    CanaryPolicy: (CanaryPolicy(), None),
    Track: (Track(model="churn"), "Track(Production of churn)"),
    Rollout: (
        Rollout(kind="canary", status="progressing", candidate="churn-v3", step=1),
        "Rollout(canary progressing of churn-v3, step 1)",
    ),
    EndpointSpec: (
        EndpointSpec(
            variants=[PRIMARY, CANARY],
            replicas=2,
            rollout=Rollout(kind="canary", status="progressing", candidate="churn-v3"),
        ),
        "EndpointSpec(primary churn-v2 + churn-v3 canary 25%, 2 replica(s), canary progressing)",
    ),
    VariantStats: (
        VariantStats("churn-v2", 1486, 0, 0.36, 4.54, first_at=3),
        "VariantStats(churn-v2: 1,486 requests, 0 errors, p99 4.5 ms)",
    ),
    Decision: (Decision("advance", "step 1 healthy " * 10, {"n": 1}), None),
    DecisionRecord: (
        DecisionRecord(
            request_id="0190a0b0c0d07000800000000000abcd",
            row=0,
            rows=1,
            at=1_700_000_000_000,
            endpoint="credit",
            variant="credit-v2",
            model="credit",
            version=2,
            features={"age": 41, "income": 52_000.0},
            prediction=1,
            probabilities={"classes": [0, 1], "p": [0.2, 0.8]},
            explanation={
                "base_value": -0.4,
                "output": 1.39,
                "output_space": "log-odds",
                "contributions": {"income": 1.5, "age": 0.29},
                "other": 0.0,
            },
            status="ok",
        ),
        "DecisionRecord(0190a0b0c0d0 row 0 on credit by models:/credit/2 -> 1)",
    ),
    PruneReport: (
        PruneReport(1_700_000_000_000, False, 3, 12_000, 1, 7, endpoints={"credit": 3}),
        "PruneReport(deleted 3 segment(s), 12,000 row(s), 1 with decisions, 7 label(s))",
    ),
    OnlineResponse: (
        OnlineResponse(
            ["spend", "plan"],
            {"spend": [1.0, None], "plan": ["basic", None]},
            {"spend": ["present", "missing"], "plan": ["present", "missing"]},
        ),
        "OnlineResponse(2 features x 2 rows: 2 missing, 2 present)",
    ),
    ConsistencyReport: (
        ConsistencyReport("customer_activity", 50, "2026-01-01", {"spend": 0}),
        "ConsistencyReport(customer_activity: 50 checked, consistent)",
    ),
    PlanItem: (
        PlanItem("customer_activity", "new_version", 1, 2, "f" * 64),
        "PlanItem(customer_activity: new_version, v1 -> v2)",
    ),
    Entity: (CUSTOMER, "Entity(customer, keys customer_id)"),
    FeatureView: (
        VIEW,
        "FeatureView(customer_activity of customer, ttl 30d: feature_0, feature_1, "
        "feature_2, feature_3, fea…)",
    ),
    OnDemandFeatureView: (
        OnDemandFeatureView(
            name="tax",
            sources=[],
            request_schema=[Field("net")],
            schema=[Field("gross")],
            transform=lambda df: df,
        ),
        "OnDemandFeatureView(tax from request data: gross)",
    ),
    VerifyReport: (VerifyReport(46, 46, "9" * 64), None),
    LineageNode: (
        LINEAGE_NODE,
        "LineageNode(model_version:churn/3)",
    ),
    LineageEdge: (
        LineageEdge("run:" + RUN_ID, "model_version:churn/3", "produced"),
        f"LineageEdge(run:{RUN_ID} -produced-> model_version:churn/3)",
    ),
    LineageGraph: (
        LineageGraph(
            LINEAGE_NODE.key,
            (LINEAGE_NODE, LineageNode("run", RUN_ID, "run hgb", {"status": "FINISHED"})),
            (LineageEdge("run:" + RUN_ID, LINEAGE_NODE.key, "produced"),),
            truncated=True,
        ),
        "LineageGraph(model_version:churn/3: 2 nodes, 1 edges, truncated)",
    ),
    DatasetRow: (
        DatasetRow("customers", None, "me", 1, 3, 3),
        "DatasetRow(customers@3, 3 versions)",
    ),
    DatasetVersion: (
        DatasetVersion(
            "customers",
            3,
            "a" * 64,
            [ColumnSchema("age", "int64", True)],
            2000,
            1,
            9000,
            None,
            None,
            {"age": {"mean": 41.5}},
            "me",
            1,
            ["f" * 64],
            version_id=7,
            _loader=lambda v: None,  # type: ignore[arg-type,return-value]
        ),
        "DatasetVersion(customers@3, 2,000 rows, sha aaaaaaaaaaaa...)",
    ),
    DatasetInput: (DatasetInput(RUN_ID, "customers@3", "train", "a" * 64, 1), None),
    ColumnSchema: (ColumnSchema("age", "int64", False), "ColumnSchema(age: int64, not null)"),
    CheckResult: (CheckResult("age_range", "between", False, {"failing_rows": 2}, "0..120"), None),
    DeploymentEvent: (
        DeploymentEvent(1, "root", "rollback", 7, "automatic: canary error rate " * 4, {"n": 1}),
        None,
    ),
    AuditEvent: (
        AuditEvent(
            46,
            "ev",
            1,
            "root",
            "deploy.rollback",
            "endpoint",
            "churn",
            {"a": 1},
            None,
            "automatic: canary p99 168.9 ms > 1.5 x primary 3.3 ms",
            "0" * 64,
            "1" * 64,
        ),
        None,
    ),
    StoredEvent: (
        StoredEvent(
            46,
            "ev",
            1,
            "root",
            "deploy.rollback",
            "endpoint",
            "churn",
            '{"a":1}',
            None,
            "automatic: canary p99 168.9 ms > 1.5 x primary 3.3 ms",
            "0" * 64,
            "1" * 64,
        ),
        None,
    ),
}

OUTPUT = OutputRef("return", "a" * 64, "a" * 64, "parquet", 48_213, "DataFrame 4,000 x 12")
STEP = StepRun(
    step="train[1]",
    func="churn.steps:train",
    upstream=("load",),
    options={"retries": 2},
    status="failed",
    attempts=3,
    started_at=1,
    ended_at=5,
    cache_key="c" * 64,
    inputs={"c": "d" * 64},
    error="ConnectionError: the feature server at http://127.0.0.1:6566 did not answer",
    links=(Link("run", RUN_ID),),
)
RECORDS.update(
    {
        OutputRef: (OUTPUT, "OutputRef(return parquet 48,213 B: DataFrame 4,000 x 12)"),
        Link: (Link("model_version", "churn/4"), None),
        PlannedStep: (
            PlannedStep("train[1]", "churn.steps:train", ("load",), {"retries": 2}),
            "PlannedStep(train[1] = churn.steps:train after load)",
        ),
        StepResult: (
            StepResult("load", "cached", outputs=(OUTPUT,), cached_from=RUN_ID),
            "StepResult(load cached)",
        ),
        StepRun: (
            STEP,
            "StepRun(train[1] failed: ConnectionError: the feature server at http://1…)",
        ),
        PipelineRun: (
            PipelineRun(
                run_id=RUN_ID,
                pipeline="churn",
                ref="churn.pipelines:churn",
                params={"rows": 1000},
                status="failed",
                runner="local",
                started_at=1,
                ended_at=9,
                code_version={"commit": "f" * 40, "dirty": False, "source_sha256": "e" * 64},
                error=STEP.error,
                failed_step="train[1]",
                actor="ana",
                steps=(STEP,),
            ),
            "PipelineRun(abc123def456 'churn' failed at train[1]: ConnectionError: the feature "
            "server at http://1…, 1 step)",
        ),
        PipelineSummary: (
            PipelineSummary("churn", "churn.pipelines:churn", 3, RUN_ID, "succeeded", 9),
            "PipelineSummary('churn', 3 runs, last succeeded)",
        ),
        Trigger: (
            Trigger(
                name="retrain-on-drift",
                pipeline="milepost.retraining:retrain",
                params={"model": "churn"},
                kind="drift",
                spec={"monitor": "churn-health"},
                enabled=True,
                state={"last_alert_id": 0},
                created_by="tester",
                created_at=1,
                updated_at=1,
                trigger_id=1,
            ),
            "Trigger(retrain-on-drift: milepost.retraining:retrain on drift alerts of monitor "
            "churn-health)",
        ),
        Firing: (
            Firing(
                "f" * 32,
                "retrain-on-drift",
                "alert:2",
                "monitor churn-health raised alert 2",
                1,
                RUN_ID,
                "succeeded",
            ),
            f"Firing(retrain-on-drift alert:2 -> {RUN_ID} succeeded)",
        ),
    }
)

CARD_FIELD = CardField("intended_use", "Rank customers by churn risk " * 4, 0, "ana", 1)
TRAIN = CardDataset(
    "churn.train@1",
    "train",
    "a" * 64,
    2000,
    [{"name": "age", "type": "int64", "nullable": True, "mean": 41.5}],
)
RECORDS.update(
    {
        CardField: (
            CARD_FIELD,
            "CardField(intended_use for model by ana: Rank customers by churn risk Rank "
            "customers by …)",
        ),
        CardDataset: (TRAIN, "CardDataset(churn.train@1 as 'train', 2,000 rows, 1 columns)"),
        CardDeployment: (
            CardDeployment("churn-ep", 1, 2, ["primary"], True, [{"at": 1, "kind": "create"}]),
            "CardDeployment(churn-ep as primary, serving, 1 events)",
        ),
        ModelCard: (
            ModelCard(
                name="churn",
                version=3,
                stage="Production",
                aliases=["champion"],
                flavor="sklearn",
                author="ana",
                created_at=1,
                run_id=RUN_ID,
                code_version=None,
                environment=None,
                signature=SIGNATURE.to_dict(),
                description=None,
                files={"model.skops": "f" * 64},
                metrics={"roc_auc": 0.85},
                feature_refs=[],
                training_data=[TRAIN],
                evaluation_data=[],
                evaluations=[RECORDS[EvaluationResult][0]],
                fairness=[],
                promotions=[RECORDS[PromotionRequest][0]],
                stage_history=[RECORDS[StageEvent][0]],
                deployments=[],
                lineage=None,
                fields={"intended_use": CARD_FIELD},
                missing=["license"],
                generated_at=2,
                notes={"lineage": "not available"},
            ),
            "ModelCard(churn/3 Production, 9/10 sections written, 1 evaluations)",
        ),
    }
)

# Exported dataclasses and pydantic models that are definitions or plumbing, not records
# Milepost returns (their default reprs are short, or they are configuration).
NOT_RECORDS = {
    "Settings", "GateContext", "Gate", "Approval", "DataValidation", "MetricVsBaseline", "Fairness",
    "DatasetSource", "FileSource", "PushSource", "Field", "Definitions",
    "OnlineCoverage", "ViewMaterialization", "AuditProblem",
}  # fmt: skip
PACKAGES = [
    "milepost",
    "milepost.cards",
    "milepost.tracking",
    "milepost.models",
    "milepost.promotion",
    "milepost.evaluation",
    "milepost.serving",
    "milepost.features",
    "milepost.governance",
    "milepost.pipelines",
]


def test_every_public_record_is_here() -> None:
    exported = set()
    for name in PACKAGES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if isinstance(obj, type) and (
                dataclasses.is_dataclass(obj) or issubclass(obj, pydantic.BaseModel)
            ):
                exported.add(obj)
    missing = {t.__name__ for t in exported} - {t.__name__ for t in RECORDS} - NOT_RECORDS
    assert not missing, f"add an example of {sorted(missing)} to RECORDS"


@pytest.mark.parametrize("kind", list(RECORDS), ids=lambda t: t.__name__)
def test_repr_is_one_short_line(kind: type) -> None:
    record, expected = RECORDS[kind]
    text = repr(record)
    assert text.startswith(f"{kind.__name__}(") and text.endswith(")"), text
    assert "\n" not in text and len(text) <= 120, text
    if expected is not None:
        assert text == expected


@pytest.mark.parametrize(
    "kind",
    [k for k in RECORDS if k not in (OnlineResponse, FeatureView, OnDemandFeatureView, Entity)],
    ids=lambda t: t.__name__,
)
def test_to_dict_is_json_and_derived_from_the_fields(kind: type) -> None:
    record, _ = RECORDS[kind]
    data = record.to_dict()
    json.dumps(data, allow_nan=False)  # NaN and infinities arrive as strings
    if isinstance(record, pydantic.BaseModel):
        assert data == record.model_dump(mode="json")
        return
    if kind is VerifyReport:  # its wire form nests the head (`milepost audit verify --json`)
        assert {"ok", "checked", "head", "problems"} <= set(data)
        return
    renamed = {"model_uri": "model", "dataset_ref": "dataset"}
    internal = {"version_id", "trigger_id"}  # database row ids
    for f in dataclasses.fields(record):
        if f.name not in internal and not f.name.startswith("_"):  # private: _loader
            assert renamed.get(f.name, f.name) in data, (kind.__name__, f.name)
    assert "version_id" not in data


# computed results of the feature store, not stored records (features/ is reworked apart)
NOT_FROZEN = {OnlineResponse, ConsistencyReport}


@pytest.mark.parametrize(
    "kind",
    [k for k in RECORDS if dataclasses.is_dataclass(k) and k not in NOT_FROZEN],
    ids=lambda t: t.__name__,
)
def test_records_are_frozen(kind: type) -> None:
    record, _ = RECORDS[kind]
    first = dataclasses.fields(record)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, first, getattr(record, first))


def test_derived_to_dict_round_trips() -> None:
    """What ``record_dict`` derives is the fields, so the dict rebuilds an equal record."""
    for kind in (DeploymentEvent, AuditEvent, StageEvent, TrustedType, DatasetRow, CheckResult):
        record, _ = RECORDS[kind]
        assert kind(**record.to_dict()) == record, kind.__name__
    event = RECORDS[DeploymentEvent][0]
    assert list(event.to_dict()) == [f.name for f in dataclasses.fields(event)]


def test_new_fields_reach_to_dict_by_themselves() -> None:
    @dataclasses.dataclass(frozen=True)
    class Later:
        a: int
        added_later: dict[str, float] = dataclasses.field(default_factory=dict)
        gate: GateResult | None = None

    data = record_dict(Later(1, {"x": float("nan")}, GATE))
    assert data["added_later"] == {"x": "nan"} and data["gate"]["name"] == GATE.name
    assert record_dict(RECORDS[Run][0])["status"] == "FINISHED"
    assert isinstance(PagedList([RECORDS[Run][0]] * 5, "tok"), list)
    assert repr(PagedList([RECORDS[Run][0]] * 5, "tok")).startswith(
        "PagedList(5 items, more with .token: [Run(abc123def456"
    )
