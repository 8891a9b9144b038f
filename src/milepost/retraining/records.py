"""What each step of the retraining pipeline returns: plain, JSON-able frozen records.

Every record carries the step's :class:`Decision` (what it did and why), so a run's
story is the list of its steps' decisions, in order (:func:`decisions`). The pipeline
stores each record as the step's output; ``PipelineRun.outputs(step)`` loads it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from milepost._records import record_dict, short

__all__ = [
    "Candidate",
    "Comparison",
    "DataCheck",
    "Decision",
    "Deployment",
    "Staging",
    "TrainingSet",
    "decisions",
]


@dataclass(frozen=True)
class Decision:
    """One step's decision: ``action`` (a short verb phrase such as ``"validated"``,
    ``"not promoted"``, ``"canary started"``), the ``reasons`` behind it (sentences a
    person reads) and ``details`` (plain JSON data: ids, numbers)."""

    step: str
    action: str
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __str__(self) -> str:
        return f"{self.step}: {self.action}" + (
            f" ({'; '.join(self.reasons)})" if self.reasons else ""
        )

    def __repr__(self) -> str:
        return f"Decision({self.step}: {short(self.action)})"


@dataclass(frozen=True)
class DataCheck:
    """The labels dataset version that was validated, and the suite's verdict."""

    labels: str  # the dataset version ref, name@N
    rows: int
    suite: str
    result_id: str
    summary: str
    decision: Decision

    def lineage_links(self) -> list[tuple[str, str, str]]:
        """The labels dataset version it read (a lineage edge of the step)."""
        return [("dataset_version", self.labels, "input")]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"DataCheck({self.labels}: {short(self.summary, 50)})"


@dataclass(frozen=True)
class TrainingSet:
    """The point-in-time training set, split by time and registered as two datasets.

    ``cutoff`` is the time (UTC) where the held-out part starts: every training row is
    older than every held-out row. ``feature_refs`` are the exact ``view:vN:feature``
    refs the rows were built from (the model pins them); ``columns`` the model's inputs.
    """

    train: str  # dataset version ref
    holdout: str  # dataset version ref
    train_rows: int
    holdout_rows: int
    cutoff: str
    feature_refs: list[str]
    columns: list[str]
    target: str
    run_id: str  # the tracking run that built it (the retrieval is recorded there)
    decision: Decision

    def lineage_links(self) -> list[tuple[str, str]]:
        """The training and held-out dataset versions it registered, and its run."""
        return [("dataset_version", self.train), ("dataset_version", self.holdout)] + (
            [("run", self.run_id)] if self.run_id else []
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return (
            f"TrainingSet({self.train} {self.train_rows:,} rows, "
            f"{self.holdout} {self.holdout_rows:,} held out)"
        )


@dataclass(frozen=True)
class Candidate:
    """The trained model: its tracking run, its registered version, its held-out metrics."""

    model: str
    version: int
    run_id: str
    metrics: dict[str, float]
    training: TrainingSet
    decision: Decision

    @property
    def uri(self) -> str:
        """``models:/NAME/VERSION``."""
        return f"models:/{self.model}/{self.version}"

    def lineage_links(self) -> list[tuple[str, str]]:
        """The model version it registered and the run that trained it."""
        return [("model_version", f"{self.model}/{self.version}"), ("run", self.run_id)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        shown = next(
            (f", {k} {self.metrics[k]:.4f}" for k in ("roc_auc", "rmse") if k in self.metrics), ""
        )
        return f"Candidate({self.model} v{self.version}{shown})"


@dataclass(frozen=True)
class Comparison:
    """The candidate and the current Production version scored on the same held-out data.

    ``winner`` is ``"candidate"``, ``"production"`` or ``"tie"``; ``"candidate"`` also
    when there is no Production version yet (``production_version`` None: no baseline).
    ``improvement`` is the candidate's gain on ``primary`` (positive is better, whatever
    the metric's direction), None without a baseline.
    """

    candidate: Candidate
    dataset: str
    primary: str
    candidate_score: float | None
    production_version: int | None
    production_score: float | None
    improvement: float | None
    winner: str
    evaluations: dict[str, str]  # "candidate" / "production" -> evaluation id
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        def score(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.4f}"

        cand = f"v{self.candidate.version} {score(self.candidate_score)}"
        if self.production_version is None:
            return f"Comparison({self.primary} {cand}: no baseline)"
        base = f"v{self.production_version} {score(self.production_score)}"
        return f"Comparison({self.primary} {cand} vs {base}: {self.winner})"


@dataclass(frozen=True)
class Staging:
    """The candidate's promotion to Staging: done, or refused by its gates."""

    candidate: Candidate
    promoted: bool
    request_id: str | None
    gates: list[dict[str, Any]]
    decision: Decision

    def lineage_links(self) -> list[tuple[str, str]]:
        """The promotion request to Staging (when one was made)."""
        return [("promotion_request", self.request_id)] if self.request_id else []

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"Staging(v{self.candidate.version}: {short(self.decision.action, 50)})"


@dataclass(frozen=True)
class Deployment:
    """What happened after Staging, on the Production endpoint (``deploy_model``) or on
    the staging endpoint (``deploy_staging``; its ``decision.step`` says which).

    ``deploy_model``'s ``action`` is one of ``canary started``, ``first Production
    version`` (the endpoint created for it), ``pending approval``, ``awaiting rollout``,
    ``in production``, ``not deployed`` (the Production gates refused it, or it never
    reached Staging). ``deploy_staging``'s is ``staging endpoint created``, ``staging
    endpoint switched``, ``already serving``, ``not deployed`` or ``no staging
    endpoint``. ``request_id`` is the Production promotion request, when one exists.
    """

    model: str
    version: int
    action: str
    endpoint: str | None
    request_id: str | None
    gates: list[dict[str, Any]]
    decision: Decision

    def lineage_links(self) -> list[tuple[str, str]]:
        """The endpoint it rolled out on and the Production request (when made)."""
        out = [("endpoint", self.endpoint)] if self.endpoint else []
        return out + ([("promotion_request", self.request_id)] if self.request_id else [])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        where = f" on {self.endpoint}" if self.endpoint else ""
        return f"Deployment(v{self.version}: {self.action}{short(where, 30)})"


def decisions(*records: Any) -> list[Decision]:
    """The decisions of step outputs, in the order given (records without one are skipped)."""
    return [r.decision for r in records if isinstance(getattr(r, "decision", None), Decision)]
