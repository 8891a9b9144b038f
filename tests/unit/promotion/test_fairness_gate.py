"""The fairness gate's policy checks and its decisions on given audit summaries."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milepost.errors import InvalidInput
from milepost.evaluation import FairnessResult
from milepost.promotion import Fairness, GateContext, PromotionPolicy
from milepost.promotion.gates import GateResult
from tests.unit.promotion.test_gates import _version

GATE = {
    "kind": "fairness",
    "dataset": "churn.test@1",
    "target": "churned",
    "sensitive_features": ["gender"],
    "min_demographic_parity_ratio": 0.8,
    "max_equalized_odds_difference": 0.1,
}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"sensitive_features": []}, r"sensitive_features: List should have at least 1 item"),
        ({"sensitive_features": "gender"}, r"sensitive_features: Input should be a valid list"),
        ({"sensitive_features": ["gender", "gender"]}, "repeats a column"),
        ({"sensitive_features": ["churned"]}, "cannot be a sensitive feature too"),
        ({"min_demographic_parity_ratio": 1.5}, "min_demographic_parity_ratio: Input should be "),
        ({"max_equalized_odds_difference": -0.1}, "max_equalized_odds_difference"),
        ({"min_equalized_odds_ratio": "0.8"}, "min_equalized_odds_ratio: Input should be"),
        ({"max_demographic_parity_difference": math.nan}, "finite number"),
        (
            {"min_demographic_parity_ratio": None, "max_equalized_odds_difference": None},
            "at least one bound",
        ),
        ({"min_group_size": 0}, "min_group_size"),
        ({"min_group_size": 2.5}, "min_group_size"),
        ({"threshold": 2}, "threshold"),
        ({"dataset": " "}, "dataset"),
        ({"min_disparity": 0.8}, "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_bad_fairness_gates_are_refused_when_the_policy_is_parsed(
    change: dict[str, Any], match: str
) -> None:
    spec = {k: v for k, v in {**GATE, **change}.items() if v is not None}
    with pytest.raises(InvalidInput, match=match) as info:
        PromotionPolicy.from_dict({"production": [spec]})
    assert "(fairness)" in info.value.message


def test_a_good_gate_round_trips() -> None:
    policy = PromotionPolicy.from_dict({"production": [GATE]})
    assert PromotionPolicy.from_dict(policy.to_dict()) == policy
    gate = policy.production[0]
    assert isinstance(gate, Fairness) and gate.min_group_size == 30 and gate.threshold == 0.5


def _check(gate: Fairness, summary: dict[str, dict[str, float | None]]) -> GateResult:
    def audit(candidate: Any, dataset: str, **options: Any) -> FairnessResult:
        assert options["sensitive_features"] == gate.sensitive_features
        return FairnessResult(
            "a" * 32,
            candidate.uri,
            dataset,
            options["target"],
            options["sensitive_features"],
            summary,
            [],
            100,
            options["min_group_size"],
            unreliable_groups=["gender=nonbinary"],
        )

    ctx = GateContext(
        "m", _version(2), "Production", None, "tester", None,  # type: ignore[arg-type]
        data=None, roles=None, audit_fairness=audit,  # type: ignore[arg-type]
    )  # fmt: skip
    return gate.check(ctx)


def _summary(**values: float | None) -> dict[str, dict[str, float | None]]:
    keys = (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equalized_odds_ratio",
    )
    return {"gender": {k: values.get(k, 0.5) for k in keys}}


def test_the_message_names_the_feature_the_measure_the_value_and_the_bound() -> None:
    gate = Fairness(**GATE)
    result = _check(gate, _summary(demographic_parity_ratio=0.62, equalized_odds_difference=0.05))
    assert result.status == "failed"
    assert result.message == (
        "gender: demographic parity ratio 0.62 < 0.80 (unreliable: gender=nonbinary)"
    )
    assert result.details["audit_id"] == "a" * 32
    assert result.details["summary"]["gender"]["demographic_parity_ratio"] == 0.62
    passed = _check(gate, _summary(demographic_parity_ratio=0.9, equalized_odds_difference=0.1))
    assert passed.status == "passed"


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf])
def test_a_value_that_cannot_be_computed_fails_closed(bad: float | None) -> None:
    result = _check(
        Fairness(**GATE), _summary(demographic_parity_ratio=1.0, equalized_odds_difference=bad)
    )
    assert result.status == "failed"
    assert "gender: equalized odds difference could not be computed" in result.message


unit = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))
bound = st.floats(min_value=0, max_value=1)


@given(ratio=unit, difference=unit, min_ratio=bound, max_difference=bound)
def test_the_gate_passes_only_when_every_finite_comparison_holds(
    ratio: float | None, difference: float | None, min_ratio: float, max_difference: float
) -> None:
    gate = Fairness(
        **{**GATE, "min_demographic_parity_ratio": min_ratio,
           "max_equalized_odds_difference": max_difference}
    )  # fmt: skip
    result = _check(
        gate, _summary(demographic_parity_ratio=ratio, equalized_odds_difference=difference)
    )
    holds = (
        ratio is not None
        and difference is not None
        and math.isfinite(ratio)
        and math.isfinite(difference)
        and ratio >= min_ratio
        and difference <= max_difference
    )
    assert result.passed == holds
