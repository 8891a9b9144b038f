"""Evaluation: score model versions on dataset versions, overall and per slice, and audit
their fairness across sensitive features."""

from milepost.evaluation.fairness import GROUP_COLUMNS, SUMMARY_KEYS, FairnessResult
from milepost.evaluation.metrics import (
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    classification_metrics,
    regression_metrics,
)
from milepost.evaluation.service import EvaluationResult, EvaluationService

__all__ = [
    "GROUP_COLUMNS",
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "SUMMARY_KEYS",
    "EvaluationResult",
    "EvaluationService",
    "FairnessResult",
    "classification_metrics",
    "regression_metrics",
]
