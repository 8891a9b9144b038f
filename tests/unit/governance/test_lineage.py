"""The lineage graph on every metadata backend, over a history made with the public API
(tests/unit/governance/_history.py): exact nodes and edges both ways, the dataset
question, depth and bounds, refs in every form and bad ones."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import milepost
from milepost import Client, Runtime
from milepost.errors import InvalidInput, NotFound
from milepost.governance.lineage import LineageGraph, LineageService
from tests.conftest import BACKENDS, POSTGRES_URI, require
from tests.unit.governance import _history
from tests.unit.governance._history import FEATURES, History


@pytest.fixture(scope="module", params=BACKENDS)
def recorded(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    churn_models: dict[str, Any],
    churn_frame: pd.DataFrame,
) -> Iterator[tuple[dict[str, Any], History]]:
    """The history, recorded once per backend (the settings to reopen it, its ids).

    Building it is the slow part (models logged, a promotion with three gates) and the
    tests given it only read, so they share it: a clean environment and a working
    directory of its own, like the ``runtime`` fixture's.
    """
    root = tmp_path_factory.mktemp(f"lineage-{request.param}")
    schema = None
    if request.param == "postgres":
        require("postgres")
        schema = f"mp_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(POSTGRES_URI, poolclass=sa.pool.NullPool)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in POSTGRES_URI else "?"
        uri = f"{POSTGRES_URI}{sep}options=-csearch_path%3D{schema}"
    else:
        uri = f"sqlite:///{root / 'meta.db'}"
    settings = {
        "home": root / "home",
        "metadata_uri": uri,
        "metric_flush_interval": 0.05,
        "user": "tester",
    }
    try:
        with pytest.MonkeyPatch.context() as env:
            for key in list(os.environ):
                if key.startswith("MILEPOST_") and not key.startswith("MILEPOST_TEST_"):
                    env.delenv(key)
            env.chdir(root)
            milepost.configure(**settings)
            try:
                history = _history.build(churn_models, churn_frame, pipeline=False)
            finally:
                milepost.reset()
        yield settings, history
    finally:
        if schema is not None:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


@pytest.fixture
def shared(recorded: tuple[dict[str, Any], History]) -> Runtime:
    """The process's runtime, reopened over the recorded history."""
    return milepost.configure(**recorded[0])


@pytest.fixture
def history(recorded: tuple[dict[str, Any], History]) -> History:
    return recorded[1]


def _edges(graph: LineageGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.relation, e.target) for e in graph.edges}


def test_a_model_versions_graph_both_ways(shared: Runtime, history: History) -> None:
    run, req, ev = history.runs["churn/1"], history.request_id, history.eval_id
    graph = Client().lineage("models:/churn/1")
    assert graph.root == "model_version:churn/1"
    assert graph.nodes[0].key == graph.root and not graph.truncated
    gate0, gate1, gate2 = (f"gate_result:{req}#{i}" for i in range(3))
    audit = f"fairness_audit:{history.audit_id}"
    commit = shared.tracking.get_run(run).git_commit  # the test's checkout, if any
    code = (
        {
            (f"code_version:{commit}", "code", f"run:{run}"),
            (f"code_version:{commit}", "code", "model_version:churn/1"),
        }
        if commit
        else set()
    )
    assert _edges(graph) - code == {
        # upstream: the run and the data it trained and was checked on
        (f"run:{run}", "produced", "model_version:churn/1"),
        ("dataset_version:lineage.train@1", "train", f"run:{run}"),
        ("dataset_version:lineage.test@1", "eval", f"run:{run}"),
        ("dataset_version:lineage.train@1", "train", "model_version:churn/1"),
        ("dataset_version:lineage.test@1", "eval", "model_version:churn/1"),
        # downstream: evaluation, promotion with its gates, stage, deployment, monitoring
        ("model_version:churn/1", "evaluated", f"evaluation:{ev}"),
        ("model_version:churn/1", "requested", f"promotion_request:{req}"),
        ("model_version:churn/1", "stage", "stage_transition:1"),
        ("model_version:churn/1", "deployed", "endpoint:lineage-ep"),
        (f"promotion_request:{req}", "gate", gate0),
        (f"promotion_request:{req}", "gate", gate1),
        (f"promotion_request:{req}", "gate", gate2),
        ("model_version:churn/1", "audited", audit),
        (audit, "evidence", gate2),
        (f"promotion_request:{req}", "decided", "stage_transition:1"),
        (f"evaluation:{ev}", "evidence", gate0),
        ("endpoint:lineage-ep", "event", "deployment_event:1"),
        ("endpoint:lineage-ep", "monitored", "monitor:lineage-mon"),
        ("monitor:lineage-mon", "watched_by", "trigger:lineage-retrain"),
    }
    assert {n.key for n in graph.nodes} == {k for e in _edges(graph) for k in (e[0], e[2])}
    model = graph.node("model_version:churn/1")
    assert model.label == "churn/1" and model.attrs["stage"] == "Production"
    assert graph.node(gate0).attrs["status"] == "passed"
    assert graph.node("stage_transition:1").label == "None → Production"
    assert graph.node("endpoint:lineage-ep").attrs["tracks"] == "Production of churn"
    assert graph.node(f"evaluation:{ev}").attrs["rows"] == 600
    # nearest first, each way
    up = [n.key for n in graph.upstream()]
    assert set(up) - {f"code_version:{commit}"} == {
        f"run:{run}",
        "dataset_version:lineage.train@1",
        "dataset_version:lineage.test@1",
    }
    assert len(up) == 3 + bool(commit)
    down = [n.key for n in graph.downstream()]
    assert set(down[:5]) == {
        f"evaluation:{ev}",
        audit,
        f"promotion_request:{req}",
        "stage_transition:1",
        "endpoint:lineage-ep",
    }
    assert down[-1] == "trigger:lineage-retrain" and len(down) == 11
    assert graph.node(audit).label.startswith("fairness audit ")
    assert {n.key for n in graph.upstream(gate0)[:2]} == {
        f"promotion_request:{req}",
        f"evaluation:{ev}",
    }
    with pytest.raises(KeyError):
        graph.upstream("model_version:other/1")
    # JSON-ready, and nothing was written
    doc = graph.to_dict()
    assert doc["root"] == graph.root and len(doc["nodes"]) == len(graph.nodes)
    assert doc["nodes"][0]["key"] == graph.root and doc["truncated"] is False
    assert shared.audit.verify().ok


def test_a_datasets_graph_reaches_runs_models_validations_and_gates(
    shared: Runtime, history: History
) -> None:
    req = history.request_id
    graph = shared.lineage.graph("datasets:/lineage.train@1", direction="downstream")
    r1, r2 = history.runs["churn/1"], history.runs["churn/2"]
    edges = _edges(graph)
    assert {
        ("dataset_version:lineage.train@1", "train", f"run:{r1}"),
        ("dataset_version:lineage.train@1", "train", f"run:{r2}"),
        ("dataset_version:lineage.train@1", "train", "model_version:churn/1"),
        ("dataset_version:lineage.train@1", "train", "model_version:churn/2"),
        ("dataset_version:lineage.train@1", "validated", f"validation:{history.validation_id}"),
        (f"validation:{history.validation_id}", "evidence", f"gate_result:{req}#1"),
        (f"run:{r1}", "produced", "model_version:churn/1"),
        ("model_version:churn/1", "deployed", "endpoint:lineage-ep"),
    } <= edges
    assert graph.upstream() == []
    assert "model_version:other/1" not in {n.key for n in graph.nodes}  # trained on @2
    # the held-out set: evaluated on, not trained on
    test = shared.lineage.graph("lineage.test@1", direction="downstream", depth=1)
    assert (
        "dataset_version:lineage.test@1",
        "evaluated_on",
        f"evaluation:{history.eval_id}",
    ) in _edges(test)
    assert (
        "dataset_version:lineage.test@1",
        "evaluated_on",
        f"fairness_audit:{history.audit_id}",
    ) in _edges(test)


def test_which_production_models_were_trained_on_a_dataset(
    shared: Runtime, history: History
) -> None:
    lineage = shared.lineage
    assert [n.ref for n in lineage.models_trained_on("lineage.train@1")] == ["churn/1", "churn/2"]
    production = Client().list_models_trained_on("datasets:/lineage.train@1", stage="Production")
    assert [(n.ref, n.attrs["stage"]) for n in production] == [("churn/1", "Production")]
    assert lineage.models_trained_on("lineage.train@1", stage="none")[0].ref == "churn/2"
    assert [n.ref for n in lineage.models_trained_on("lineage.train@2")] == ["other/1"]
    assert [n.ref for n in lineage.models_trained_on("lineage.train")] == ["other/1"]  # latest
    # held-out data trains nothing, though every model was evaluated on it
    assert lineage.models_trained_on("lineage.test@1") == []
    with pytest.raises(InvalidInput, match="Did you mean 'Production'"):
        lineage.models_trained_on("lineage.train@1", stage="Productoin")
    with pytest.raises(InvalidInput, match="takes a dataset version"):
        lineage.models_trained_on("models:/churn/1")
    with pytest.raises(NotFound, match=r"lineage\.train@1"):
        lineage.models_trained_on("lineage.trian@1")


def test_depth_direction_and_the_node_bound(shared: Runtime, history: History) -> None:
    lineage = shared.lineage
    assert [n.key for n in lineage.graph("models:/churn/1", depth=0).nodes] == [
        "model_version:churn/1"
    ]
    near = lineage.graph("models:/churn/1", depth=1)
    assert all("model_version:churn/1" in (e.source, e.target) for e in near.edges)
    assert {n.kind for n in near.nodes} - {"code_version"} == {
        "model_version",
        "run",
        "dataset_version",
        "evaluation",
        "fairness_audit",
        "promotion_request",
        "stage_transition",
        "endpoint",
    }
    up = lineage.graph("models:/churn/1", direction="upstream")
    assert {n.kind for n in up.nodes} - {"code_version"} == {
        "model_version",
        "run",
        "dataset_version",
    }
    assert up.direction == "upstream" and up.downstream() == []
    cut = lineage.graph("models:/churn/1", max_nodes=4)
    assert cut.truncated and len(cut.nodes) == 4 and cut.nodes[0].key == cut.root
    keys = {n.key for n in cut.nodes}
    assert all(e.source in keys and e.target in keys for e in cut.edges)
    small = LineageService(shared.db, max_nodes=2).graph("endpoints:/lineage-ep")
    assert small.truncated and len(small.nodes) == 2 and small.max_nodes == 2
    assert not lineage.graph("endpoints:/lineage-ep").truncated


def test_refs_in_every_form(shared: Runtime, history: History) -> None:
    resolve = shared.lineage.resolve
    run = history.runs["churn/2"]
    assert resolve("models:/churn/Production") == "model_version:churn/1"
    assert resolve("models:/churn/latest") == "model_version:churn/2"
    assert resolve("churn/2") == "model_version:churn/2"
    assert resolve("model_version:churn/2") == "model_version:churn/2"
    assert resolve("datasets:/lineage.train") == "dataset_version:lineage.train@2"
    assert resolve("lineage.train@latest") == "dataset_version:lineage.train@2"
    assert resolve(f"runs:/{run}") == f"run:{run}"
    assert resolve(run) == f"run:{run}"
    assert resolve("endpoints:/lineage-ep") == resolve("lineage-ep") == "endpoint:lineage-ep"
    assert resolve("monitors:/lineage-mon") == "monitor:lineage-mon"
    assert resolve(f"gate_result:{history.request_id}#1").endswith("#1")
    Client().set_alias("churn", "champion", 2)
    try:
        assert resolve("models:/churn@champion") == "model_version:churn/2"
    finally:  # the history is shared: leave it as recorded
        Client().delete_alias("churn", "champion")


@pytest.mark.parametrize(
    ("ref", "error", "match"),
    [
        ("models:/chrun/1", NotFound, "No model version 'chrun/1'.*Did you mean 'churn/1'"),
        ("datasets:/lineage.trian@1", NotFound, "Did you mean 'lineage.train@1'"),
        ("models:/churn/7", NotFound, "No model version 'churn/7'"),
        ("endpoints:/lineage-pe", NotFound, "Did you mean 'lineage-ep'"),
        ("models:/churn/Staging", NotFound, "Model 'churn' has no version in Staging"),
        ("model:/churn/1", InvalidInput, "unknown scheme 'model:/'.*Did you mean 'models'"),
        ("whatever", InvalidInput, "names nothing recorded.*models:/NAME/3"),
        ("runs:/", InvalidInput, "names no run"),
        ("models:/churn/v3", InvalidInput, "neither|not a stage"),
    ],
)
def test_bad_refs_say_what_exists(
    shared: Runtime, history: History, ref: str, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        shared.lineage.graph(ref)


def test_bad_walk_arguments(shared: Runtime, history: History) -> None:
    with pytest.raises(InvalidInput, match="direction must be one of"):
        shared.lineage.graph("models:/churn/1", direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="depth"):
        shared.lineage.graph("models:/churn/1", depth=-1)
    with pytest.raises(InvalidInput, match="Lineage ref"):
        shared.lineage.graph(42)  # type: ignore[arg-type]


def test_pipeline_lineage_through_steps_and_code(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    history = _history.build(churn_models, churn_frame, pipeline=True)
    prun = history.pipeline_run
    prepare, train = f"pipeline_step:{prun}/prepare", f"pipeline_step:{prun}/train"
    graph = runtime.lineage.graph("lineage.raw@1", direction="downstream")
    run = next(n.key for n in graph.nodes if n.kind == "run")
    assert _edges(graph) == {
        ("dataset_version:lineage.raw@1", "input", prepare),
        (prepare, "feeds", train),
        (prepare, "output", "dataset_version:pipe.train@1"),
        (train, "output", run),
        (train, "output", "model_version:pipe_model/1"),
        ("dataset_version:pipe.train@1", "train", run),
        ("dataset_version:pipe.train@1", "train", "model_version:pipe_model/1"),
        (run, "produced", "model_version:pipe_model/1"),
    }
    assert [n.ref for n in runtime.lineage.models_trained_on("lineage.raw@1")] == ["pipe_model/1"]
    up = runtime.lineage.graph(f"pipelines:/{prun}", direction="upstream")
    code = [n for n in up.nodes if n.kind == "code_version"]
    assert len(code) == 1 and (code[0].key, "code", up.root) in _edges(up)
    model_up = runtime.lineage.graph("models:/pipe_model/1", direction="upstream")
    assert {f"pipeline_run:{prun}", "dataset_version:lineage.raw@1", code[0].key} <= {
        n.key for n in model_up.nodes
    }
    assert runtime.audit.verify().ok


def test_feature_views_link_source_data_runs_and_models(runtime: Runtime) -> None:
    from sklearn.linear_model import LogisticRegression

    from milepost.demo.data import generate_customers, labels
    from milepost.features import FeatureStore

    customers = milepost.data.register("customers", generate_customers(600, seed=3))
    store = FeatureStore("milepost.demo.features")
    store.apply()
    refs = ["customer_profile:age", "customer_activity:monthly_spend"]
    with milepost.start_run(experiment="features") as run:  # no log_input: features only
        train = store.get_historical_features(labels(customers.to_pandas()), refs)
        X = train[["age", "monthly_spend"]].fillna(0)
        model = LogisticRegression(max_iter=200).fit(X, train["churned"])
        milepost.log_model(model, "by_features", input_example=X.head(3))
    graph = runtime.lineage.graph("customers@1", direction="downstream")
    profile, activity = (
        "feature_view_version:customer_profile:v1",
        "feature_view_version:customer_activity:v1",
    )
    model_key, run_key = "model_version:by_features/1", f"run:{run.run_id}"
    assert {
        ("dataset_version:customers@1", "source", profile),
        ("dataset_version:customers@1", "source", activity),
        ("dataset_version:customers@1", "feature_source", run_key),
        (run_key, "produced", model_key),
    } <= _edges(graph)
    # the view versions lead on to the run and the model that pinned them
    assert {(profile, "features", run_key), (activity, "features", model_key)} <= _edges(graph)
    assert [n.ref for n in runtime.lineage.models_trained_on("customers@1")] == ["by_features/1"]
    assert runtime.lineage.resolve("features:/customer_activity:1") == activity
    up = runtime.lineage.graph("models:/by_features/1", direction="upstream")
    assert {profile, activity, "dataset_version:customers@1", run_key} <= {n.key for n in up.nodes}
    assert up.node(activity).attrs["status"] == "active"


def test_an_alert_leads_to_the_firing_and_run_it_caused(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    from tests.contract.test_monitors import serve_churn
    from tests.unit.pipelines.test_triggers import (
        CHURN,
        Clock,
        Recording,
        monitors_of,
        scheduler,
        service,
        shift,
    )

    serve_churn(runtime, churn_models, churn_frame)
    clock = Clock(time.time())  # after v1 was logged, before v2 is
    monitors = monitors_of(runtime, clock)
    monitors.create(
        "churn-health", endpoint="churn-ep", checks=["feature_drift"], thresholds={"psi": 0.2}
    )
    launcher = Recording()  # records the launch; the pipeline run itself never starts
    triggers = service(runtime, clock, launcher)
    triggers.add("on-drift", CHURN, on_drift="churn-health")
    shift(runtime, clock, seed=5)
    raised = monitors.run("churn-health").alerts
    assert raised
    fired = scheduler(triggers, launcher, clock).tick().firings[0]
    alert = max(a.alert_id for a in raised)
    graph = runtime.lineage.graph(f"alert:{alert}")
    firing, prun = f"trigger_firing:{fired.firing_id}", f"pipeline_run:{fired.run_id}"
    assert {
        ("monitor:churn-health", "raised", f"alert:{alert}"),
        ("endpoint:churn-ep", "monitored", "monitor:churn-health"),
        ("model_version:churn/1", "deployed", "endpoint:churn-ep"),
        (f"alert:{alert}", "caused", firing),
        (firing, "launched", prun),
    } <= _edges(graph)
    assert "trigger:on-drift" not in {n.key for n in graph.nodes}  # a co-parent, not upstream
    assert graph.node(prun).attrs == {"missing": True}  # launched by a recording launcher
    assert graph.node(firing).attrs["cause"] == f"alert:{alert}"
    assert graph.node(f"alert:{alert}").attrs["metric"] == "psi"
    # from the model version down to the firing: deployment, monitoring, alert, trigger
    down = runtime.lineage.graph("models:/churn/1", direction="downstream")
    assert {firing, prun, "trigger:on-drift"} <= {n.key for n in down.nodes}
    # bounded by time: a version logged after the alert is not upstream of it
    with milepost.start_run(experiment="monitoring"):
        milepost.log_model(
            churn_models["weak"], "churn", input_example=churn_frame.head(3)[FEATURES]
        )
    runtime.serving.canary("churn-ep", 2)  # v2 on the endpoint, after the alert
    later = runtime.lineage.graph(f"alert:{alert}", direction="upstream")
    assert ("model_version:churn/1", "deployed", "endpoint:churn-ep") in _edges(later)
    assert "model_version:churn/2" not in {n.key for n in later.nodes}
    assert "model_version:churn/2" in {
        n.key for n in runtime.lineage.graph("endpoints:/churn-ep", direction="upstream").nodes
    }
    assert {
        ("monitor:churn-health", "watched_by", "trigger:on-drift"),
        ("trigger:on-drift", "fired", firing),
    } <= _edges(down)
