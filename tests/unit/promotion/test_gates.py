"""Gate checks fail closed: NaN, infinities or missing values never open a gate."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from milepost.evaluation.service import EvaluationResult
from milepost.models.models import ModelVersion
from milepost.promotion.gates import GateContext, GateResult, MetricVsBaseline


def _version(number: int) -> ModelVersion:
    return ModelVersion(
        name="m",
        version=number,
        stage="Production" if number == 1 else "None",
        flavor="sklearn",
        run_id=None,
        author="a",
        created_at=0,
        stage_changed_at=0,
        files={},
        signature=None,
        input_example=None,
        metrics={},
        datasets=[],
        feature_refs=[],
        trusted_types=[],
        onnx=None,
        env_hash=None,
        code_version=None,
        description=None,
    )


def _check(
    gate: MetricVsBaseline,
    candidate: dict[str, float | None],
    baseline: dict[str, float | None] | None,
) -> GateResult:
    """Run the gate with evaluations that return the given metric values."""

    def evaluate(version: ModelVersion, dataset: str, **_: Any) -> EvaluationResult:
        metrics = candidate if version.version == 2 else baseline
        assert metrics is not None
        return EvaluationResult(
            f"e{version.version}", version.uri, dataset, "classification", "y", 10, metrics
        )

    ctx = GateContext(
        "m",
        _version(2),
        "Production",
        None if baseline is None else _version(1),
        "tester",
        evaluate,
        data=None,  # type: ignore[arg-type]
        roles=None,  # type: ignore[arg-type]
    )
    return gate.check(ctx)


values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 0.5, 1.0]),
)
params = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


def _finite(*xs: float | None) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


@given(c=values, b=values, cg=values, bg=values, min_delta=params, tolerance=params)
def test_against_production_the_gate_passes_only_when_the_finite_comparison_holds(
    c: float | None,
    b: float | None,
    cg: float | None,
    bg: float | None,
    min_delta: float,
    tolerance: float,
) -> None:
    gate = MetricVsBaseline(
        dataset="d@1",
        target="y",
        primary="roc_auc",
        min_delta=min_delta,
        guards={"log_loss": tolerance},
    )
    result = _check(gate, {"roc_auc": c, "log_loss": cg}, {"roc_auc": b, "log_loss": bg})
    holds = False
    if _finite(c, b, cg, bg):
        assert c is not None and b is not None and cg is not None and bg is not None
        gain, regression = c - b, cg - bg  # log_loss: lower is better
        holds = _finite(gain, regression) and gain >= min_delta and regression <= tolerance
    assert result.passed == holds, result
    assert result.status in ("passed", "failed", "error")
    if c is not None and not math.isfinite(c):
        assert str(c) in result.message


@given(c=values, threshold=st.floats(min_value=0, max_value=1))
def test_first_production_passes_only_when_the_finite_threshold_holds(
    c: float | None, threshold: float
) -> None:
    gate = MetricVsBaseline(dataset="d@1", target="y", primary="roc_auc", threshold=threshold)
    result = _check(gate, {"roc_auc": c}, None)
    assert result.passed == (_finite(c) and c is not None and c >= threshold), result


@given(c=values, threshold=st.floats(min_value=0, max_value=1e9))
def test_lower_is_better_threshold_fails_closed(c: float | None, threshold: float) -> None:
    gate = MetricVsBaseline(
        dataset="d@1", target="y", task="regression", primary="rmse", threshold=threshold
    )
    result = _check(gate, {"rmse": c}, None)
    assert result.passed == (_finite(c) and c is not None and c <= threshold), result


def test_nan_candidate_is_an_error_naming_the_value() -> None:
    gate = MetricVsBaseline(dataset="d@1", target="y", min_delta=0.01)
    result = _check(gate, {"roc_auc": math.nan}, {"roc_auc": 0.7})
    assert result.status == "error" and "nan" in result.message
    result = _check(gate, {"roc_auc": 0.9}, {"roc_auc": -math.inf})
    assert (
        result.status == "error"
        and "-inf" in result.message
        and "Production v1" in (result.message)
    )
