"""Promotion policies are checked when they are set: types, finite numbers, ranges."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from milepost.errors import InvalidInput
from milepost.promotion import Approval, MetricVsBaseline, PromotionPolicy

METRIC = {"kind": "metric_vs_baseline", "dataset": "d@1", "target": "y"}
NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("gate", "match"),
    [
        (
            {**METRIC, "min_delta": NAN},
            r"production\[0\] \(metric_vs_baseline\): min_delta: .*finite",
        ),
        ({**METRIC, "min_delta": INF}, r"min_delta: .*finite"),
        ({**METRIC, "min_delta": -INF}, r"min_delta: .*finite"),
        ({**METRIC, "threshold": NAN}, r"threshold: .*finite"),
        ({**METRIC, "threshold": -INF}, r"threshold: .*finite"),
        ({**METRIC, "guards": {"log_loss": NAN}}, r"guards\.log_loss: .*finite"),
        ({**METRIC, "guards": {"log_loss": INF}}, r"guards\.log_loss: .*finite"),
        ({**METRIC, "min_delta": "0.5"}, r"min_delta: .*valid number.*'0\.5'"),
        ({**METRIC, "min_delta": True}, r"min_delta: .*valid number"),
        ({**METRIC, "min_delta": 10**400}, r"min_delta: .*valid number"),
        ({**METRIC, "min_delta": None}, r"min_delta"),
        ({**METRIC, "min_delta": -0.1}, r"min_delta: .*greater than or equal to 0"),
        ({**METRIC, "guards": {"log_loss": -0.1}}, r"guards\.log_loss: .*greater than or equal"),
        ({**METRIC, "guards": {"log_loss": "0.1"}}, r"guards\.log_loss: .*valid number"),
        ({**METRIC, "guards": ["log_loss"]}, r"guards: .*dictionary"),
        ({**METRIC, "guards": {"speed": 0.1}}, r"guards: .*unknown metric 'speed'"),
        ({**METRIC, "primary": "roc-auc"}, r"primary: .*unknown metric 'roc-auc'.*roc_auc"),
        ({**METRIC, "primary": 3}, r"primary: .*valid string"),
        ({**METRIC, "threshold": 1.5}, r"threshold: .*roc_auc lies in \[0, 1\]"),
        ({**METRIC, "primary": "rmse", "threshold": -1.0}, r"threshold: .*rmse"),
        ({**METRIC, "dataset": 5}, r"dataset: .*valid string"),
        ({**METRIC, "dataset": ""}, r"dataset: .*at least 1"),
        ({**METRIC, "task": "clustering"}, r"task"),
        ({**METRIC, "task": "regression"}, r"roc_auc is not a regression metric"),
        (
            {**METRIC, "task": "classification", "primary": "f1", "guards": {"rmse": 0.1}},
            r"rmse is not a classification metric",
        ),
        ({"kind": "approval", "count": True}, r"\(approval\): count: .*valid integer"),
        ({"kind": "approval", "count": 1.5}, r"count: .*valid integer"),
        ({"kind": "approval", "count": 2.0}, r"count: .*valid integer"),
        ({"kind": "approval", "count": "2"}, r"count: .*valid integer"),
        ({"kind": "approval", "count": NAN}, r"count: .*valid integer"),
        ({"kind": "approval", "count": 0}, r"count: .*greater than or equal to 1"),
        ({"kind": "approval", "count": 10**30}, r"count: .*less than or equal to 10"),
        ({"kind": "approval", "allow_self_approval": "yes"}, r"allow_self_approval: .*boolean"),
        ({"kind": "approval", "allow_self_approval": 1}, r"allow_self_approval: .*boolean"),
        ({"kind": "approval", "role": ""}, r"role: .*at least 1"),
        ({"kind": "approval", "role": None}, r"role"),
        ({"kind": "data_validation", "roles": "train"}, r"roles: .*valid list"),
        ({"kind": "data_validation", "roles": []}, r"roles: .*at least 1"),
        ({"kind": "data_validation", "suite": 1}, r"suite: .*valid string"),
        ({"kind": ["approval"]}, r"production\[0\]: each gate needs a 'kind'.*\['approval'\]"),
        ({"kind": None}, r"production\[0\]: each gate needs a 'kind'"),
        ("approval", r"production\[0\]: each gate needs a 'kind'"),
        ({"kind": "approval", "name": 7}, r"name: .*valid string"),
    ],
)
def test_bad_gate_parameters_are_refused_naming_the_field(gate: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        PromotionPolicy.from_dict({"production": [gate]})


def test_the_message_names_section_and_index() -> None:
    with pytest.raises(InvalidInput, match=r"^staging\[1\] \(metric_vs_baseline\): min_delta"):
        PromotionPolicy.from_dict({"staging": [{"kind": "approval"}, {**METRIC, "min_delta": NAN}]})


@pytest.mark.parametrize(
    "text",
    [
        "production:\n  - {kind: metric_vs_baseline, dataset: d@1, target: y, min_delta: .nan}\n",
        "production:\n  - {kind: metric_vs_baseline, dataset: d@1, target: y, threshold: .inf}\n",
        "production:\n  - {kind: metric_vs_baseline, dataset: d@1, target: y, min_delta: '0.1'}\n",
        "production:\n  - {kind: approval, count: yes}\n",
    ],
)
def test_yaml_with_nan_or_wrong_types_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"production\[0\]"):
        PromotionPolicy.from_yaml(text)


def test_valid_policy_round_trips() -> None:
    policy = PromotionPolicy.from_dict(
        {
            "staging": [{"kind": "data_validation", "suite": "basic"}],
            "production": [
                {**METRIC, "min_delta": 0, "guards": {"log_loss": 0.01}, "threshold": 0.7},
                {"kind": "approval", "count": 2},
            ],
        }
    )
    assert PromotionPolicy.from_yaml(policy.to_yaml()) == policy
    assert PromotionPolicy.from_dict(policy.to_dict()) == policy


@pytest.mark.parametrize(
    "data",
    [5, 3.5, ["production"], "production", True, {1: [], "production": []}, {"production": "x"}],
)
def test_a_policy_that_is_not_a_mapping_of_lists_is_invalid_input(data: Any) -> None:
    with pytest.raises(InvalidInput):
        PromotionPolicy.from_dict(data)


def test_policy_sources_that_are_not_yaml_text_or_a_readable_file(tmp_path: Path) -> None:
    directory = tmp_path / "policy.yml"
    directory.mkdir()
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00production: []")
    missing = tmp_path / "missing.yaml"
    for source, match in [
        (directory, "is a directory"),
        (str(directory), "is a directory"),
        (binary, "not UTF-8"),
        (str(binary), "not UTF-8"),
        (missing, "does not exist"),
        (str(missing), "does not exist"),
        (5, "YAML text or a path"),
        (["production"], "YAML text or a path"),
        (None, "YAML text or a path"),
        ("production: [", "not valid YAML"),
        ("just words", "plain string.*pathlib.Path"),
        ("policy.txt", "plain string.*pathlib.Path"),
    ]:
        with pytest.raises(InvalidInput, match=match):
            PromotionPolicy.from_yaml(source)  # type: ignore[arg-type]


def test_gates_built_in_python_are_checked_the_same_way() -> None:
    with pytest.raises(InvalidInput, match=r"^MetricVsBaseline \(metric_vs_baseline\): min_delta"):
        MetricVsBaseline(dataset="d@1", target="y", min_delta=math.nan)
    with pytest.raises(InvalidInput, match=r"^Approval \(approval\): count: .*valid integer"):
        Approval(count="2")  # type: ignore[arg-type]
    assert Approval(count=2).count == 2


def test_the_path_to_production_passes_stagings_gates_unless_the_policy_allows_a_jump() -> None:
    policy = PromotionPolicy.from_dict(
        {
            "staging": [{"kind": "data_validation"}],
            "production": [{"kind": "approval"}],
        }
    )
    assert not policy.allow_direct_production
    kinds = [(stage, g.kind) for stage, g in policy.gates_on_path("None", "Production")]
    assert kinds == [("Staging", "data_validation"), ("Production", "approval")]
    assert [g.kind for _, g in policy.gates_on_path("Staging", "Production")] == ["approval"]
    assert [g.kind for _, g in policy.gates_on_path("None", "Staging")] == ["data_validation"]
    direct = PromotionPolicy.from_dict({**policy.to_dict(), "allow_direct_production": True})
    assert [g.kind for _, g in direct.gates_on_path("None", "Production")] == ["approval"]
    assert PromotionPolicy.from_yaml(direct.to_yaml()) == direct
