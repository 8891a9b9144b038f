"""The model registry on every metadata backend."""

from __future__ import annotations

import multiprocessing as mp
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import milepost
from milepost import Client, Runtime
from milepost.demo.data import LABEL
from milepost.errors import Conflict, IntegrityViolation, InvalidInput, NotFound, PermissionDenied
from tests._wait import clock_ms_after
from tests.contract.conftest import FEATURES


def _log(model: Any, frame: pd.DataFrame, *, name: str = "churn", **kw: Any) -> Any:
    with milepost.start_run(experiment="models") as run:
        milepost.log_params({"model": type(model.named_steps["model"]).__name__})
        milepost.log_metric("train_rows", 2000)
        mv = milepost.log_model(model, name, input_example=frame[FEATURES].head(5), **kw)
    return mv, run


def test_log_model_registers_a_traceable_version(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    train = milepost.data.register("churn.train", churn_frame.iloc[:2000])
    with milepost.start_run(experiment="models") as run:
        milepost.log_input(train, role="train")
        milepost.log_metric("val_auc", 0.77)
        mv = milepost.log_model(
            churn_models["good"],
            "churn",
            input_example=churn_frame[FEATURES].head(5),
            description="baseline",
            tags={"team": "growth"},
        )
    assert (mv.name, mv.version, mv.stage, mv.flavor) == ("churn", 1, "None", "sklearn")
    assert mv.run_id == run.run_id and mv.author == "tester"
    assert mv.metrics == {"val_auc": 0.77}
    assert mv.datasets == [
        {"ref": "churn.train@1", "role": "train", "content_hash": train.content_hash}
    ]
    assert mv.env_hash and mv.signature is not None and mv.signature.input_names == FEATURES
    assert mv.input_example is not None and len(mv.input_example) == 5
    assert mv.tags == {"team": "growth"} and mv.description == "baseline"
    assert [a.path for a in Client().list_artifacts(run.run_id)] == ["models/churn/model.skops"]
    again = Client().get_model_version("models:/churn/latest")
    assert again.to_dict() == mv.to_dict()
    events = Client().list_audit_events(object_type="model_version")
    assert events[0].action == "model_version.register" and events[0].object_id == "churn/1"


def test_load_predicts_through_the_signature(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    _log(churn_models["good"], churn_frame)
    model = milepost.load_model("models:/churn/1")
    rows = churn_frame[FEATURES].iloc[:50]
    np.testing.assert_array_equal(model.predict(rows), churn_models["good"].predict(rows))
    np.testing.assert_allclose(
        model.predict_proba(rows.to_dict("records")), churn_models["good"].predict_proba(rows)
    )
    with pytest.raises(InvalidInput, match="missing column 'plan'"):
        model.predict(rows.drop(columns=["plan"]))
    with pytest.raises(InvalidInput, match="column 'churned', which the model does not take"):
        model.predict(churn_frame[[*FEATURES, LABEL]].iloc[:3])
    lenient = milepost.load_model("models:/churn/1", extra_columns="ignore")
    assert len(lenient.predict(churn_frame[[*FEATURES, LABEL]].iloc[:3])) == 3


def test_onnx_twin_serves_the_same_answers(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    mv, _ = _log(churn_models["good"], churn_frame, onnx=True)
    assert mv.has_onnx and mv.onnx and mv.onnx["kept"]
    fast = milepost.load_model(mv.uri, prefer_onnx=True)
    assert fast.uses_onnx
    rows = churn_frame[FEATURES].iloc[:200]
    np.testing.assert_allclose(
        fast.predict_proba(rows), churn_models["good"].predict_proba(rows), atol=1e-6
    )
    # The native model is loaded only when something asks for it (an explanation), once.
    assert fast._native_loader is not None
    native = fast.native
    assert type(native) is type(churn_models["good"]) and fast._native_loader is None
    assert fast.native is native
    np.testing.assert_allclose(native.predict_proba(rows), fast.predict_proba(rows), atol=1e-6)


def test_tampered_model_file_is_refused(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    mv, _ = _log(churn_models["good"], churn_frame)
    path = Path(runtime.blobs.location(mv.files["model.skops"]))
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IntegrityViolation, match="does not match its recorded SHA-256"):
        milepost.load_model(mv.uri)


class _Echo:
    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(X))


def test_pickled_models_load_only_when_trusted(runtime: Runtime) -> None:
    with milepost.start_run():
        mv = milepost.log_model(_Echo(), "echo", input_example=pd.DataFrame({"x": [1.0]}))
    assert mv.flavor == "python"
    with pytest.raises(PermissionDenied, match="pickled model"):
        milepost.load_model("models:/echo/1")
    assert milepost.load_model("models:/echo/1", trusted=True).predict(
        {"x": [1.0, 2.0]}
    ).tolist() == [0, 0]


def test_aliases_and_uris(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    _log(churn_models["weak"], churn_frame)
    _log(churn_models["good"], churn_frame)
    c = Client()
    c.set_alias("churn", "champion", 2)
    assert c.get_model_version("models:/churn@champion").version == 2
    c.set_alias("churn", "champion", 1)
    assert milepost.load_model("models:/churn@champion").version.version == 1
    assert c.get_model("churn").aliases == {"champion": 1}
    c.delete_alias("churn", "champion")
    with pytest.raises(NotFound, match="no alias 'champion'"):
        c.get_model_version("models:/churn@champion")
    with pytest.raises(InvalidInput, match="reserved"):
        c.set_alias("churn", "production", 1)
    with pytest.raises(NotFound, match="no version 9; the newest is 2"):
        c.get_model_version("churn", 9)
    with pytest.raises(NotFound, match="Did you mean 'churn'"):
        c.get_model("chrun")


def test_stages_history_and_production_at(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    for _ in range(3):
        _log(churn_models["good"], churn_frame)
    c = Client()
    c.promote("churn", 1, "Production", reason="first")
    t1 = int(time.time() * 1000)
    clock_ms_after(t1)  # the next promotion is stamped after t1
    c.promote("churn", 2, "Staging")
    c.promote("churn", 2, "Production", reason="better")
    t2 = int(time.time() * 1000)
    versions = {v.version: v.stage for v in c.list_model_versions("churn")}
    assert versions == {1: "Archived", 2: "Production", 3: "None"}
    assert [(e.version, e.from_stage, e.to_stage) for e in c.get_model_history("churn")] == [
        (1, "None", "Production"),
        (2, "None", "Staging"),
        (1, "Production", "Archived"),
        (2, "Staging", "Production"),
    ]
    assert c.production_at("churn", t1) == 1
    assert c.production_at("churn", t2) == 2
    assert c.production_at("churn", datetime(2000, 1, 1, tzinfo=UTC)) is None
    assert c.get_model_version("models:/churn/Production").version == 2
    with pytest.raises(Conflict, match="re-reviewed: promote it to Staging first"):
        c.promote("churn", 1, "Production")
    with pytest.raises(Conflict, match="already in Production"):
        c.promote("churn", 2, "Production")
    c.archive_model_version("churn", 2, reason="retired")
    with pytest.raises(NotFound, match="no version in Production"):
        c.get_model_version("models:/churn/Production")


def test_the_database_allows_one_production_version(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    _log(churn_models["good"], churn_frame)
    _log(churn_models["good"], churn_frame)
    Client().promote("churn", 1, "Production")
    with pytest.raises(Conflict), runtime.db.write() as conn:
        conn.execute(sa.text("UPDATE model_versions SET stage = 'Production' WHERE version = 2"))


def _promote(args: tuple[str, str, int]) -> str:
    uri, home, version = args
    milepost.configure(metadata_uri=uri, home=Path(home), user=f"worker{version}")
    try:
        milepost.Client().promote("churn", version, "Production")
        return "won"
    except Conflict:
        return "lost"
    finally:
        milepost.reset()


def test_concurrent_promotions_exactly_one_wins(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    for _ in range(4):
        _log(churn_models["good"], churn_frame)
    with mp.get_context("spawn").Pool(4) as pool:
        outcomes = pool.map(
            _promote, [(runtime.db.uri, str(tmp_path / "home"), v) for v in range(1, 5)]
        )
    stages = [v.stage for v in Client().list_model_versions("churn")]
    assert stages.count("Production") == 1
    # every winner archived the one before it, or lost; nobody overwrote silently
    assert outcomes.count("won") >= 1
    history = Client().get_model_history("churn")
    assert sum(1 for e in history if e.to_stage == "Production") == outcomes.count("won")


def test_bad_names(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    with milepost.start_run(), pytest.raises(InvalidInput, match="Model name"):
        milepost.log_model(
            churn_models["good"], "bad name!", input_example=churn_frame[FEATURES].head(2)
        )
    with pytest.raises(InvalidInput, match="Model URI"):
        milepost.load_model("churn/1")


_BARRIER = __import__("threading").Barrier(2, timeout=30)


def test_two_promotions_decided_together_exactly_one_wins(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    """A plugin gate holds both promotions until both have looked at Production."""
    from typing import Literal

    from milepost.promotion import Gate, GateContext, GateResult, register_gate

    @register_gate
    class Rendezvous(Gate):
        kind: Literal["test_rendezvous"] = "test_rendezvous"

        def check(self, ctx: GateContext) -> GateResult:
            _BARRIER.wait()
            return self.result("passed", "both promotions are past their gates")

    import threading

    _log(churn_models["good"], churn_frame)
    _log(churn_models["good"], churn_frame)
    Client().set_promotion_policy("churn", {"production": [{"kind": "test_rendezvous"}]})
    outcomes: dict[int, str] = {}

    def promote(version: int) -> None:
        try:
            Client().promote("churn", version, "Production")
            outcomes[version] = "won"
        except Conflict as exc:
            outcomes[version] = str(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o == "won" for o in outcomes.values()) == [False, True]
    loser = next(o for o in outcomes.values() if o != "won")
    assert "changed while this promotion was decided" in loser
    assert [v.stage for v in Client().list_model_versions("churn")].count("Production") == 1
