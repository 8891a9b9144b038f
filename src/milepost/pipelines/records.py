"""What a pipeline run records: the plan, each step's result, and the records the store
returns.

This module is the contract between the engine (:mod:`milepost.pipelines.engine`, which
runs steps and reports what happened) and the service/store (which writes it down): the
engine calls a :class:`Recorder`; the service implements it on the metadata store.

Times are epoch milliseconds (UTC). Step ids are unique within a run: a step's name, or
``name[i]`` for the i-th trial of a fanned-out step (``step.map``), or ``name#2`` when a
pipeline calls the same step twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from milepost._records import record_dict, short

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "Link",
    "OutputRef",
    "PlannedStep",
    "Recorder",
    "RunStatus",
    "StepResult",
    "StepStatus",
]

#: A step's status: ``pending`` (planned, not started), ``running``, ``succeeded``,
#: ``failed``, ``cached`` (outputs reused from an earlier run; ``cached_from`` says which),
#: ``skipped`` (not run because an upstream step failed).
StepStatus = Literal["pending", "running", "succeeded", "failed", "cached", "skipped"]

#: A pipeline run's status.
RunStatus = Literal["running", "succeeded", "failed"]

#: What a link points at (the lineage graph's node kinds a step touches).
LinkKind = Literal[
    "run", "dataset_version", "model_version", "promotion_request", "endpoint", "pipeline_run"
]


@dataclass(frozen=True)
class OutputRef:
    """One stored output value of a step.

    ``name`` is ``"return"`` for a single return value, or the tuple index (``"0"``,
    ``"1"``) when the step returns a fixed-length tuple. ``key`` is the artifact store key
    (content addressed), ``sha256`` the hash of the stored bytes, ``format`` how they are
    encoded (``json``, ``parquet``, ``numpy``, ``skops``, ``pickle``), ``summary`` one short
    line for people ("DataFrame 4,000 x 12", "0.873").
    """

    name: str
    key: str
    sha256: str
    format: str
    size: int
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)

    def __repr__(self) -> str:
        return f"OutputRef({self.name} {self.format} {self.size:,} B: {short(self.summary)})"


@dataclass(frozen=True)
class Link:
    """A lineage edge from a step to something it read (``role="input"``) or made
    (``role="output"``): a tracking run id, a dataset version ``name@version``, a model
    version ``name/version``, a promotion request id, an endpoint name, a pipeline run id."""

    kind: LinkKind
    ref: str
    role: Literal["input", "output"] = "output"

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)


@dataclass(frozen=True)
class PlannedStep:
    """A node of the validated DAG, as recorded before anything runs.

    ``func`` is ``module:qualname`` of the step's function; ``upstream`` the step ids whose
    outputs it takes; ``options`` the step's settings that matter to a reader (``cache``,
    ``retries``, ``retry_on``, ``timeout``, ``track``) as plain JSON data.
    """

    step: str
    func: str
    upstream: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)

    def __repr__(self) -> str:
        after = f" after {short(', '.join(self.upstream))}" if self.upstream else ""
        return f"PlannedStep({self.step} = {self.func}{after})"


@dataclass(frozen=True)
class StepResult:
    """How one step ended (or was reused, or skipped).

    Attributes:
        step: the step id.
        status: ``succeeded``, ``failed``, ``cached`` or ``skipped``.
        attempts: attempts made (0 for cached and skipped steps; > 1 after retries).
        started_at, ended_at: epoch ms of the first attempt's start and the last one's end.
        cache_key: sha256 of the step's code, options that change results, and inputs;
            equal keys mean the stored outputs can be reused.
        inputs: parameter name -> sha256 of the value passed (pipeline parameters and
            upstream outputs alike).
        outputs: the stored outputs (empty unless succeeded or cached).
        logs_key: artifact store key of the captured stdout, stderr and log records (text).
        error: ``"ExceptionType: message"`` of the last attempt, or why it was skipped
            (``"upstream step 'train' failed"``) or timed out.
        traceback: the last attempt's formatted traceback.
        links: lineage edges (tracking runs started in the step, records it returned).
        cached_from: the pipeline run id whose outputs a ``cached`` step reused.
    """

    step: str
    status: StepStatus
    attempts: int = 0
    started_at: int | None = None
    ended_at: int | None = None
    cache_key: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: tuple[OutputRef, ...] = ()
    logs_key: str | None = None
    error: str | None = None
    traceback: str | None = None
    links: tuple[Link, ...] = ()
    cached_from: str | None = None

    @property
    def duration_ms(self) -> int | None:
        """Wall time in ms, when both ends are known."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)

    def __repr__(self) -> str:
        why = f": {short(self.error)}" if self.error else ""
        return f"StepResult({self.step} {self.status}{why})"


class Recorder(Protocol):
    """Where the engine reports a run's progress (the service writes it to the store).

    Calls come from the engine's thread, in this order: ``plan`` once; then per step
    ``lookup_cache`` (when caching is on), ``step_started`` per attempt, and exactly one
    ``step_finished``. A step that is reused or skipped gets only ``step_finished``.
    """

    def plan(self, steps: Sequence[PlannedStep]) -> None:
        """The validated DAG, in a topological order, before any step runs."""

    def lookup_cache(self, step: str, cache_key: str) -> StepResult | None:
        """A succeeded (or cached) earlier result with this cache key whose stored outputs
        still exist, or None. The engine reuses it as ``cached`` with ``cached_from`` set."""

    def step_started(self, step: str, attempt: int, at_ms: int) -> None:
        """An attempt of ``step`` starts (attempt 1, 2, ... on retries)."""

    def step_finished(self, result: StepResult) -> None:
        """The step's final result."""
