"""``record_from_dict`` rebuilds a record from its ``to_dict()`` JSON (the remote client's
answers): nested records, enums, tuples, NaN written as strings, ISO times."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from milepost._records import record_dict, record_from_dict
from milepost.tracking import Metric, Run, RunStatus
from tests.unit.test_records import RECORDS

# Records whose to_dict() is exactly their fields: the JSON round trip gives them back
# equal. (The others rename or derive keys; their remote proxies rebuild them by hand.)
ROUND_TRIP = [
    "Run",
    "Experiment",
    "Metric",
    "Environment",
    "ArtifactInfo",
    "ColumnSpec",
    "Signature",
    "ModelVersion",
    "RegisteredModel",
    "StageEvent",
    "TrustedType",
    "GateResult",
    "PromotionRequest",
    "RoleGrant",
    "VariantStats",
    "Decision",
    "DecisionRecord",
    "PruneReport",
    "ConsistencyReport",
    "PlanItem",
    "Entity",
    "LineageNode",
    "LineageEdge",
    "LineageGraph",
    "DatasetRow",
    "DatasetVersion",
    "DatasetInput",
    "ColumnSchema",
    "CheckResult",
    "DeploymentEvent",
    "AuditEvent",
    "OutputRef",
    "Link",
    "PlannedStep",
    "StepResult",
    "StepRun",
    "PipelineRun",
    "PipelineSummary",
    "Firing",
    "CardField",
    "CardDataset",
    "CardDeployment",
]
_BY_NAME = {cls.__name__: (cls, example) for cls, (example, _) in RECORDS.items()}


def _wire(record: Any) -> Any:
    return json.loads(json.dumps(record.to_dict()))


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_json_round_trip_gives_the_record_back(name: str) -> None:
    cls, example = _BY_NAME[name]
    back = record_from_dict(cls, _wire(example))
    assert type(back) is cls
    assert back.to_dict() == example.to_dict()
    assert back == example or repr(back) == repr(example)


def test_run_with_special_floats_and_enum() -> None:
    run = Run(
        run_id="a" * 32,
        experiment_id=3,
        name="r",
        status=RunStatus.FAILED,
        start_time=1,
        end_time=2,
        user="alice",
        parent_run_id=None,
        source=None,
        git_commit=None,
        git_dirty=None,
        error="boom",
        env_hash=None,
        params={"p": "1"},
        metrics={"nan": math.nan, "inf": math.inf, "neg": -math.inf, "x": 0.5},
        tags={},
    )
    wire = _wire(run)
    assert wire["metrics"]["nan"] == "nan" and wire["status"] == "FAILED"
    back = record_from_dict(Run, wire)
    assert back.status is RunStatus.FAILED
    assert math.isnan(back.metrics["nan"])
    assert (back.metrics["inf"], back.metrics["neg"], back.metrics["x"]) == (
        math.inf,
        -math.inf,
        0.5,
    )
    assert (
        record_from_dict(Metric, {"key": "k", "value": 3, "step": 0, "timestamp": 1}).value == 3.0
    )


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Inner:
    colour: Colour
    at: datetime


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    inners: tuple[Inner, ...]
    pair: tuple[int, str]
    by_key: dict[str, Inner]
    wait: timedelta
    maybe: Inner | None = None
    _private: int = 0

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)


def test_nested_records_tuples_times_and_unknown_keys() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = Outer(
        "o",
        (Inner(Colour.RED, at),),
        (1, "a"),
        {"k": Inner(Colour.RED, at)},
        timedelta(seconds=90),
    )
    wire = _wire(record)
    wire["derived_extra"] = "ignored"
    back = record_from_dict(Outer, wire)
    assert back == record
    assert isinstance(back.inners, tuple) and back.inners[0].at == at


def test_rename_undoes_the_wire_name() -> None:
    wire = {"kind": "m", "step": 1, "timestamp": 2, "value": 1.5}
    back = record_from_dict(Metric, wire, rename={"key": "kind"})
    assert back == Metric("m", 1.5, 1, 2)


def test_not_a_dataclass_is_refused() -> None:
    with pytest.raises(TypeError, match="not a dataclass"):
        record_from_dict(dict, {})
