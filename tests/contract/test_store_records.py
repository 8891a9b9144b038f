"""Stores return frozen typed records, on every metadata backend: no SQLAlchemy row, no
mapping and no JSON text leaves a store's list/get methods."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import milepost
from milepost._context import Runtime
from milepost.data import DatasetInput, DatasetRow, DatasetVersion, ValidationResult
from milepost.demo.data import LABEL
from milepost.evaluation import EvaluationResult
from milepost.models import ModelVersion, RegisteredModel, StageEvent
from milepost.promotion import GateResult, PromotionRequest
from milepost.tracking.backends.sql import RunOwner
from tests.contract.conftest import FEATURES


def _typed(value: Any, kind: type) -> None:
    """``value`` is a frozen ``kind`` record, not a row or a mapping."""
    assert type(value) is kind, f"{type(value).__name__} is not {kind.__name__}"
    assert dataclasses.is_dataclass(value)
    assert not isinstance(value, (Mapping, sa.Row, sa.RowMapping, tuple))
    first = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, first, None)


def test_data_evaluation_and_promotion_stores_return_records(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    train = milepost.data.register("churn.train", churn_frame.iloc[:500])
    milepost.data.register("churn.train", churn_frame.iloc[:600])
    suite = {"name": "basic", "checks": [{"kind": "not_null", "column": "customer_id"}]}
    result = milepost.data.validate(train, suite)
    with milepost.start_run(experiment="records") as run:
        milepost.log_input(train, role="train")
        milepost.log_model(churn_models["good"], "churn", input_example=churn_frame[FEATURES][:5])
    data = runtime.data.store

    for row in data.list_datasets():
        _typed(row, DatasetRow)
    versions = data.list_versions("churn.train")
    assert [v.version for v in versions] == [1, 2]
    for v in versions:
        _typed(v, DatasetVersion)
    # the store decodes the JSON columns and reads the files in one pass
    got = data.get_version("churn.train", 1)
    _typed(got, DatasetVersion)
    assert got.schema == train.schema and got.profile == train.profile
    assert versions[0].files == got.files == train.files
    assert data.version_by_id(train.version_id) == got
    found = data.find_by_hash("churn.train", train.content_hash, hash_version=train.hash_version)
    assert found == got
    # a version from the store loads only through the service, which gives it a loader
    assert runtime.data.get("churn.train@1").to_pandas().shape == (500, churn_frame.shape[1])
    inputs = data.inputs(run_id=run.run_id)
    assert [i.ref for i in inputs] == ["churn.train@1"]
    _typed(inputs[0], DatasetInput)
    stored = data.validations(train.version_id)
    assert [v.result_id for v in stored] == [result.result_id]
    _typed(stored[0], ValidationResult)
    _typed(data.validation(result.result_id), ValidationResult)

    evaluation = milepost.evaluate("models:/churn/1", "churn.train@1", target=LABEL)
    version = runtime.models.get_version("churn", 1)
    listed = runtime.evaluation.store.for_version(version.version_id, version.uri)
    assert listed == [evaluation]
    _typed(listed[0], EvaluationResult)
    assert runtime.evaluation.store.get(evaluation.eval_id) == evaluation
    on_frame = milepost.evaluate("models:/churn/1", churn_frame.iloc[:200], target=LABEL)
    assert runtime.evaluation.store.get(on_frame.eval_id).dataset_ref is None

    models = runtime.models.store
    _typed(models.version("churn", version=1), ModelVersion)
    _typed(models.version("churn", stage="latest"), ModelVersion)
    assert models.versions("churn") == [version] == [models.version_by_id(version.version_id)]
    _typed(models.model("churn"), RegisteredModel)
    assert models.models() == [models.model("churn")]
    assert models.model("churn").stages == {"None": [1]}
    assert models.policy("churn") is None

    runtime.promotion.set_policy("churn", {"staging": [{"kind": "approval"}]})
    assert isinstance(models.policy("churn"), str)
    pending = runtime.promotion.promote("churn", 1, "Staging")
    request = runtime.promotion.store.get(pending.request_id)
    _typed(request, PromotionRequest)
    assert request == pending and request.status == "pending_approval"
    _typed(request.gates[0], GateResult)
    assert isinstance(request.gates[0].details, dict)  # decoded by the store

    runtime.models.archive("churn", 1)
    (event,) = models.history("churn")
    _typed(event, StageEvent)
    assert (event.version, event.from_stage, event.to_stage) == (1, "None", "Archived")


def test_tracking_store_returns_run_owners(runtime: Runtime) -> None:
    with milepost.start_run(experiment="records") as run:
        (owner,) = runtime.tracking.store.running_owners(run_ids=[run.run_id])
        _typed(owner, RunOwner)
        assert owner.run_id == run.run_id and owner.owner_pid == os.getpid()
    assert runtime.tracking.store.running_owners(run_ids=[run.run_id]) == []
