"""Realised performance with late labels, and the confidence-based estimate beside it."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss, precision_recall_fscore_support, roc_auc_score

from milepost.errors import InvalidInput
from milepost.monitoring import (
    check_calibration,
    estimate_performance,
    expected_roc_auc,
    performance_over_time,
    realised_performance,
)

# -- realised -----------------------------------------------------------------------------


def test_classification_metrics_use_the_labelled_rows_and_count_the_rest() -> None:
    preds = ["a", "b", "b", "a", "c", "a"]
    labels: list[Any] = ["a", "b", "a", None, "c", float("nan")]
    perf = realised_performance(preds, labels, task="classification")
    assert (perf.predictions, perf.labelled, perf.unlabelled) == (6, 4, 2)
    assert perf.share_labelled == pytest.approx(4 / 6)
    assert perf.status == "ok"
    assert perf.metrics["accuracy"] == pytest.approx(3 / 4)
    p, r, f, _ = precision_recall_fscore_support(
        ["a", "b", "a", "c"], ["a", "b", "b", "c"], average="macro", zero_division=0.0
    )
    assert perf.metrics["precision_macro"] == pytest.approx(p)
    assert perf.metrics["recall_macro"] == pytest.approx(r)
    assert perf.metrics["f1_macro"] == pytest.approx(f)
    # no probabilities: no AUC or log loss, and the notes say why
    assert perf.metrics["roc_auc"] is None and perf.metrics["log_loss"] is None
    assert any("probabilities" in n for n in perf.notes)
    d = perf.to_dict()
    assert d["unlabelled"] == 2 and json.loads(json.dumps(d))["metrics"]["accuracy"] == 0.75


def test_numbers_are_one_class_whatever_their_type_text_is_text() -> None:
    assert realised_performance([1, 0, 1.0], [1.0, False, True], task="classification").metrics[
        "accuracy"
    ] == pytest.approx(1.0)
    assert realised_performance([1, "0"], ["1", 0], task="classification").metrics[
        "accuracy"
    ] == pytest.approx(1.0)
    assert realised_performance(["yes"], [1], task="classification").metrics["accuracy"] == 0.0


def test_probabilities_give_roc_auc_and_log_loss() -> None:
    rng = np.random.default_rng(3)
    p = rng.dirichlet([1, 1, 1], 300)
    y = np.array([rng.choice(3, p=row) for row in p])
    perf = realised_performance(
        p.argmax(1), y, task="classification", probabilities=p, classes=[0, 1, 2]
    )
    assert perf.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr", average="macro")
    )
    assert perf.metrics["log_loss"] == pytest.approx(log_loss(y, p, labels=[0, 1, 2]))
    # two classes: a 1-D array is the second class's probability
    s = p[:, 1] / (p[:, 0] + p[:, 1])
    yb = (rng.random(300) < s).astype(int)
    binary = realised_performance(
        (s > 0.5).astype(int), yb, task="classification", probabilities=s, classes=[0, 1]
    )
    assert binary.metrics["roc_auc"] == pytest.approx(roc_auc_score(yb, s))


def test_one_labelled_class_has_no_roc_auc_and_says_so() -> None:
    perf = realised_performance(
        [1, 1], [1, 1], task="classification", probabilities=[0.8, 0.6], classes=[0, 1]
    )
    assert perf.metrics["roc_auc"] is None
    assert any("both classes" in n for n in perf.notes)
    assert perf.metrics["accuracy"] == 1.0


def test_regression_metrics() -> None:
    preds = [1.0, 2.0, 4.0, 10.0]
    labels = [1.5, 2.0, 3.0, None]
    perf = realised_performance(preds, labels, task="regression")
    err = np.array([-0.5, 0.0, 1.0])
    y = np.array(labels[:3], dtype=float)
    assert perf.metrics["mae"] == pytest.approx(np.abs(err).mean())
    assert perf.metrics["rmse"] == pytest.approx(math.sqrt((err**2).mean()))
    assert perf.metrics["r2"] == pytest.approx(1 - (err**2).sum() / ((y - y.mean()) ** 2).sum())
    assert perf.unlabelled == 1
    flat = realised_performance([1.0, 2.0], [3.0, 3.0], task="regression")
    assert flat.metrics["r2"] is None and any("r2" in n for n in flat.notes)


def test_no_labels_and_no_predictions_have_a_status_not_nan() -> None:
    waiting = realised_performance([1, 0], [None, None], task="classification")
    assert waiting.status == "no_labels" and set(waiting.metrics.values()) == {None}
    assert waiting.share_labelled == 0.0
    empty = realised_performance([], [], task="regression")
    assert (empty.status, empty.predictions, empty.share_labelled) == ("empty", 0, 0.0)
    assert "no_labels" in repr(waiting)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"predictions": [1, 2], "labels": [1], "task": "classification"}, "2 predictions but 1"),
        ({"predictions": [1], "labels": [1], "task": "ranking"}, "Unknown task"),
        (
            {
                "predictions": [1],
                "labels": [1],
                "task": "classification",
                "probabilities": [[0.1, 0.2, 0.7]],
                "classes": [0, 1],
            },
            "shape",
        ),
        (
            {"predictions": [1], "labels": [1], "task": "classification", "probabilities": [0.3]},
            "class of each column",
        ),
        ({"predictions": ["a"], "labels": ["b"], "task": "regression"}, "numeric"),
    ],
)
def test_bad_input_is_refused_clearly(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        realised_performance(**kwargs)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.one_of(st.none(), st.integers(0, 2))),
        min_size=1,
        max_size=40,
    )
)
def test_accuracy_is_the_share_of_labelled_rows_predicted_right(
    pairs: list[tuple[int, int | None]],
) -> None:
    preds = [p for p, _ in pairs]
    labels = [y for _, y in pairs]
    perf = realised_performance(preds, labels, task="classification")
    labelled = [(p, y) for p, y in pairs if y is not None]
    assert perf.labelled + perf.unlabelled == perf.predictions == len(pairs)
    if not labelled:
        assert perf.status == "no_labels"
        return
    assert perf.metrics["accuracy"] == pytest.approx(
        sum(p == y for p, y in labelled) / len(labelled)
    )
    for name in ("precision_macro", "recall_macro", "f1_macro"):
        assert 0.0 <= (perf.metrics[name] or 0.0) <= 1.0


# -- over time ----------------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    t0 = pd.Timestamp("2026-01-01T10:00:00Z")
    return pd.DataFrame(
        {
            # two in 10:xx, none in 11:xx, three in 12:xx
            "ts": [t0 + pd.Timedelta(minutes=m) for m in (5, 50, 125, 130, 170)],
            "prediction": [1, 0, 1, 1, 0],
            "label": [1, None, 0, 1, 0],
            "probabilities": [[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9], [0.7, 0.3]],
        }
    )


def test_hourly_windows_with_counts_metrics_and_empty_hours() -> None:
    table = performance_over_time(_frame(), task="classification", window="1h")
    assert table["status"].tolist() == ["ok", "empty", "ok"]
    assert table["predictions"].tolist() == [2, 0, 3]
    assert table["labelled"].tolist() == [1, 0, 3]
    assert table["unlabelled"].tolist() == [1, 0, 0]
    assert table["accuracy"].iloc[0] == 1.0 and table["accuracy"].iloc[2] == pytest.approx(2 / 3)
    assert table["window_start"].iloc[0] == pd.Timestamp("2026-01-01T10:00:00Z")
    assert table["window_end"].iloc[2] == pd.Timestamp("2026-01-01T13:00:00Z")
    assert "estimated_accuracy" not in table  # no classes: no estimate
    daily = performance_over_time(_frame(), task="classification", window="1D")
    assert daily["window_start"].tolist() == [pd.Timestamp("2026-01-01T00:00:00Z")]
    assert daily["predictions"].tolist() == [5]


def test_row_windows_and_the_estimate_beside_realised() -> None:
    table = performance_over_time(_frame(), task="classification", window=2, classes=[0, 1])
    assert table["predictions"].tolist() == [2, 2, 1]
    assert table["estimated_accuracy"].iloc[0] == pytest.approx((0.8 + 0.6) / 2)
    # without a calibration check the estimate is not valid
    assert not table["estimate_valid"].any()
    assert table["roc_auc"].iloc[1] == pytest.approx(1.0)  # 0.9 for the 1, 0.7 for the 0


def test_bad_windows_and_columns() -> None:
    with pytest.raises(InvalidInput, match="neither a time offset"):
        performance_over_time(_frame(), task="classification", window="soon")
    with pytest.raises(InvalidInput, match="at least one row"):
        performance_over_time(_frame(), task="classification", window=0)
    with pytest.raises(InvalidInput, match="no column 'label'"):
        performance_over_time(_frame().drop(columns="label"), task="classification")


# -- estimation ---------------------------------------------------------------------------


def _calibrated(n: int, seed: int, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 1.5), n)
    u = rng.random(n)[:, None]
    y = (u >= np.cumsum(p, axis=1)).sum(axis=1)
    return p, np.minimum(y, k - 1)


def test_expected_roc_auc_edges() -> None:
    assert expected_roc_auc([0.3, 0.3, 0.3]) == pytest.approx(0.5)
    assert expected_roc_auc([1.0, 0.0, 1.0, 0.0]) == pytest.approx(1.0)
    assert expected_roc_auc([0.0, 0.0]) is None and expected_roc_auc([]) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.6, 0.9, 1.0]), min_size=1, max_size=25))
def test_expected_roc_auc_is_the_pairwise_expectation(scores: list[float]) -> None:
    # every (positive mass of i, negative mass of j) pair: ordered right 1, tied 1/2
    s = np.asarray(scores)
    pos, neg = s[:, None], (1 - s)[None, :]
    weight = pos * neg
    right = (weight * (s[:, None] > s[None, :])).sum() + 0.5 * (
        weight * (s[:, None] == s[None, :])
    ).sum()
    total = s.sum() * (1 - s).sum()
    got = expected_roc_auc(s)
    if total == 0:
        assert got is None
    else:
        assert got == pytest.approx(right / total)
        assert expected_roc_auc(s[::-1]) == pytest.approx(got)


def test_a_calibrated_model_is_valid_and_its_estimate_meets_the_realised_value() -> None:
    p, y = _calibrated(4000, seed=1)
    calibration = check_calibration(p[:2000], y[:2000], classes=[0, 1])
    assert calibration.calibrated and calibration.p_value is not None
    assert calibration.ece is not None and calibration.ece < 0.05
    assert sum(b["rows"] for b in calibration.reliability) == 2000
    est = estimate_performance(p[2000:], classes=[0, 1], calibration=calibration)
    real = realised_performance(
        p[2000:].argmax(1), y[2000:], task="classification", probabilities=p[2000:], classes=[0, 1]
    )
    assert est.valid and est.rows == 2000
    assert est.accuracy == pytest.approx(real.metrics["accuracy"], abs=0.03)
    assert est.roc_auc == pytest.approx(real.metrics["roc_auc"], abs=0.03)
    assert json.loads(json.dumps(calibration.to_dict()))["calibrated"] is True


def test_a_multiclass_estimate_meets_the_realised_value() -> None:
    p, y = _calibrated(4000, seed=2, k=3)
    names = np.array(["a", "b", "c"])[y]
    calibration = check_calibration(p[:2000], names[:2000], classes=["a", "b", "c"])
    assert calibration.calibrated
    est = estimate_performance(p[2000:], classes=["a", "b", "c"], calibration=calibration)
    real = realised_performance(
        p[2000:].argmax(1),
        y[2000:],
        task="classification",
        probabilities=p[2000:],
        classes=[0, 1, 2],
    )
    assert est.accuracy == pytest.approx(real.metrics["accuracy"], abs=0.03)
    assert est.roc_auc == pytest.approx(real.metrics["roc_auc"], abs=0.03)


def test_an_overconfident_model_is_flagged_and_isotonic_regression_repairs_it() -> None:
    p, y = _calibrated(6000, seed=4)
    sharp = np.clip(0.5 + (p[:, 1] - 0.5) * 1.8, 0.0, 1.0)  # says 0.95 where 0.75 is true
    raw = check_calibration(sharp[:3000], y[:3000], classes=[0, 1])
    assert not raw.calibrated and "not calibrated" in raw.reason
    flagged = estimate_performance(sharp[3000:], classes=[0, 1], calibration=raw)
    real = realised_performance(
        (sharp[3000:] > 0.5).astype(int),
        y[3000:],
        task="classification",
        probabilities=sharp[3000:],
        classes=[0, 1],
    )
    assert not flagged.valid and "not calibrated" in flagged.reason
    assert flagged.accuracy is not None and flagged.accuracy > real.metrics["accuracy"] + 0.05
    fixed = check_calibration(sharp[:3000], y[:3000], classes=[0, 1], calibrate=True)
    assert fixed.calibrated and fixed.method == "isotonic"
    assert fixed.ece_after is not None and fixed.ece_after < raw.ece
    est = estimate_performance(sharp[3000:], classes=[0, 1], calibration=fixed)
    assert est.valid and est.method == "isotonic"
    assert est.accuracy == pytest.approx(real.metrics["accuracy"], abs=0.03)
    assert est.roc_auc == pytest.approx(real.metrics["roc_auc"], abs=0.03)


def test_the_calibration_test_rarely_flags_calibrated_models() -> None:
    flagged = sum(
        not check_calibration(*_calibrated(500, seed=s), classes=[0, 1], tolerance=0.0).calibrated
        for s in range(20)
    )
    assert flagged <= 2  # alpha 0.01: about 0.2 expected of 20


def test_without_a_check_or_with_too_few_rows_the_estimate_is_not_valid() -> None:
    p, y = _calibrated(50, seed=5)
    assert "not checked" in estimate_performance(p, classes=[0, 1]).reason
    small = check_calibration(p, y, classes=[0, 1])
    assert not small.calibrated and "at least 100" in small.reason and small.ece is None
    assert not estimate_performance(p, classes=[0, 1], calibration=small).valid
    none = estimate_performance(np.empty((0, 2)), classes=[0, 1], calibration=small)
    assert (none.rows, none.accuracy, none.valid) == (0, None, False)


def test_estimation_refuses_bad_input() -> None:
    p, y = _calibrated(200, seed=6)
    with pytest.raises(InvalidInput, match="not among the classes"):
        check_calibration(p, np.where(y == 1, 7, 0), classes=[0, 1])
    calibration = check_calibration(p, y, classes=[0, 1])
    with pytest.raises(InvalidInput, match="checked for classes"):
        estimate_performance(p, classes=["no", "yes"], calibration=calibration)
    with pytest.raises(InvalidInput, match="one column per class"):
        estimate_performance(np.ones((3, 3)) / 3, classes=[0, 1])
    with pytest.raises(InvalidInput, match="finite"):
        estimate_performance([[0.5, float("nan")]], classes=[0, 1])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-1e3, 1e3, allow_nan=False),
            st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False)),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_regression_errors_agree_with_each_other(
    pairs: list[tuple[float, float | None]],
) -> None:
    perf = realised_performance([p for p, _ in pairs], [y for _, y in pairs], task="regression")
    errors = [abs(p - y) for p, y in pairs if y is not None]
    assert perf.labelled == len(errors)
    if not errors:
        return
    mae, rmse = perf.metrics["mae"], perf.metrics["rmse"]
    assert mae == pytest.approx(sum(errors) / len(errors))
    assert mae is not None and rmse is not None and rmse >= mae - 1e-9  # RMSE never below MAE


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 5), st.integers(1, 40), st.integers(0, 2**16))
def test_expected_accuracy_lies_between_chance_and_certainty(k: int, n: int, seed: int) -> None:
    p = np.random.default_rng(seed).dirichlet(np.ones(k), n)
    est = estimate_performance(p, classes=list(range(k)))
    assert est.accuracy is not None and 1 / k - 1e-9 <= est.accuracy <= 1 + 1e-9
    assert est.roc_auc is None or 0.0 <= est.roc_auc <= 1.0
    assert not est.valid  # no calibration check: never valid
