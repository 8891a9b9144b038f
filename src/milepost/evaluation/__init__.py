"""Evaluation: score model versions on dataset versions, overall and per slice."""

from milepost.evaluation.metrics import (
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    classification_metrics,
    regression_metrics,
)
from milepost.evaluation.service import EvaluationResult, EvaluationService

__all__ = [
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "EvaluationResult",
    "EvaluationService",
    "classification_metrics",
    "regression_metrics",
]
