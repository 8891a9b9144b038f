"""Decision records: what a consequential endpoint decided, on what, and why.

An endpoint marked ``consequential`` (``milepost endpoints create ... --consequential``)
makes decisions about people. For each row it answers, the replica computes the exact
SHAP contributions with the variant's explainer (:mod:`milepost.serving.explain`) and
logs a compact explanation beside the prediction, in the prediction log's
``explanation`` column:

``base_value``, ``output``, ``output_space``, ``method``, ``explained_class`` (a
classifier), ``features`` (how many input columns were explained), ``contributions``
(the top ``TOP_CONTRIBUTIONS`` by absolute value, largest first) and ``other`` (the sum
of the rest, over ``other_features`` columns), so that
``base_value + sum(contributions) + other == output`` holds for the record alone.

So a decision is explained later from the log, without loading the model again
(:meth:`milepost.serving.DeploymentService.decision`). The replica fails closed: an
answer whose explanation cannot be computed is the variant's error (HTTP 500, logged
``error``), never a success without its record. A shadow's answers are nobody's
decision and are never explained.

**Retention** (:meth:`milepost.serving.DeploymentService.prune_prediction_logs`): whole
segments are deleted once their newest row is older than the retention: a segment that
holds decision records follows ``decision_retention_days``, any other
``prediction_log_retention_days`` (None keeps them forever).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from milepost._records import record_dict, short

__all__ = [
    "TOP_CONTRIBUTIONS",
    "DecisionRecord",
    "PruneReport",
    "compact_explanation",
]

#: Contributions kept by name in a decision record; the rest are summed as ``other``.
TOP_CONTRIBUTIONS = 10


def compact_explanation(explained: dict[str, Any], top: int = TOP_CONTRIBUTIONS) -> dict[str, Any]:
    """The decision record of one row's explanation (from :class:`~milepost.serving.explain.
    Explainer`): the ``top`` contributions by absolute value and the rest as one sum.

    Args:
        explained: one row of an explainer's answer (``base_value``, ``contributions``,
            ``output``, ``output_space``, ``method``, ``explained_class``).
        top: how many contributions keep their names.
    """
    contributions: dict[str, float] = explained["contributions"]
    ranked = sorted(contributions.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
    kept, rest = ranked[:top], ranked[top:]
    out: dict[str, Any] = {
        "base_value": float(explained["base_value"]),
        "output": float(explained["output"]),
        "output_space": explained["output_space"],
        "method": explained.get("method"),
        "features": len(contributions),
        "contributions": {name: float(v) for name, v in kept},
        "other": float(sum(v for _, v in rest)),
        "other_features": len(rest),
    }
    if "explained_class" in explained:
        out["explained_class"] = explained["explained_class"]
    return out


@dataclass(frozen=True)
class DecisionRecord:
    """One decision of a consequential endpoint: the input it saw, the model version that
    answered, the answer, and why (from the prediction log; the model is not loaded).

    ``row`` is the decision's row in its request (of ``rows``); ``at`` is epoch ms;
    ``probabilities`` is ``{"classes": [...], "p": [...]}`` for a classifier;
    ``explanation`` is the compact record described in :mod:`milepost.serving.decisions`
    (None when the answer failed: ``status`` is then ``error`` and ``error`` says why).
    """

    request_id: str
    row: int
    rows: int
    at: int
    endpoint: str
    variant: str
    model: str
    version: int
    features: dict[str, Any]
    prediction: Any
    probabilities: dict[str, Any] | None
    explanation: dict[str, Any] | None
    status: str
    error: str | None = None
    latency_ms: float | None = None

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION`` of the version that decided."""
        return f"models:/{self.model}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``uri``)."""
        return record_dict(self, extra={"uri": self.uri})

    def __repr__(self) -> str:
        what = f"-> {short(self.prediction)}" if self.status == "ok" else f"{self.status}"
        return (
            f"DecisionRecord({self.request_id[:12]} row {self.row} on {self.endpoint} by "
            f"{self.uri} {what})"
        )


@dataclass(frozen=True)
class PruneReport:
    """What a prune of the prediction logs deleted (or, with ``dry_run``, would delete).

    ``before_ms`` holds each retention's cutoff (``prediction_log`` and ``decisions``, epoch
    ms; None: kept forever); ``endpoints`` counts segments per endpoint.
    """

    now: int
    dry_run: bool
    segments: int
    rows: int
    decision_segments: int
    feedback: int
    before_ms: dict[str, int | None] = field(default_factory=dict)
    endpoints: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"PruneReport({verb} {self.segments} segment(s), {self.rows:,} row(s), "
            f"{self.decision_segments} with decisions, {self.feedback} label(s))"
        )
