"""Classification metrics say how much skill there is on an imbalanced label."""

from __future__ import annotations

import numpy as np
import pytest

from milepost.evaluation import classification_metrics


def test_binary_metrics_report_skill_next_to_the_base_rate() -> None:
    y = np.array([0] * 90 + [1] * 10)
    no_skill = classification_metrics(y, np.zeros(100, dtype=int), np.full(100, 0.1))
    # accuracy equals the share of the majority class: it says nothing here
    assert no_skill["base_rate"] == pytest.approx(0.1)
    assert no_skill["accuracy"] == pytest.approx(0.9)
    assert no_skill["balanced_accuracy"] == pytest.approx(0.5)
    assert no_skill["roc_auc"] == pytest.approx(0.5)
    assert no_skill["pr_auc"] == pytest.approx(0.1)  # PR AUC with no skill: the base rate
    proba = np.where(y == 1, 0.7, 0.2)
    perfect = classification_metrics(y, (proba >= 0.5).astype(int), proba)
    assert perfect["roc_auc"] == perfect["pr_auc"] == perfect["balanced_accuracy"] == 1.0


def test_a_slice_without_positives_has_no_pr_auc() -> None:
    m = classification_metrics(
        np.zeros(5, dtype=int), np.zeros(5, dtype=int), np.full(5, 0.2), [0, 1]
    )
    assert m["pr_auc"] is None and m["roc_auc"] is None and m["base_rate"] == 0.0
