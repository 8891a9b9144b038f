"""The read-only records callers get about pipeline runs: :class:`PipelineRun`,
:class:`StepRun` and :class:`PipelineSummary`.

The store builds them from its rows (no database row leaves it); ``to_dict()`` is derived
from the fields, so the CLI's ``--json`` and the HTTP API show whatever is added later.
A :class:`PipelineRun` read through the service can load its steps' output values
(:meth:`PipelineRun.outputs`); one built by hand cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milepost._records import record_dict, short
from milepost.errors import InvalidInput, NotFound, did_you_mean
from milepost.pipelines.records import Link, OutputRef, RunStatus, StepResult, StepStatus

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["PipelineRun", "PipelineSummary", "StepRun"]


@dataclass(frozen=True)
class StepRun:
    """One step of a pipeline run as recorded: the plan (``func``, ``upstream``,
    ``options``) and how it ended (the :class:`~milepost.pipelines.StepResult` fields).

    Attributes:
        step: the step id (``train``, ``train[2]``, ``train#2``).
        func: ``module:qualname`` of the step's function.
        upstream: the step ids whose outputs it took.
        options: the step's settings (``cache``, ``retries``, ``timeout`` ...).
        status: ``pending``, ``running``, ``succeeded``, ``failed``, ``cached``, ``skipped``.
        attempts, started_at, ended_at, cache_key, inputs, outputs, logs_key, error,
        traceback, links, cached_from: as in :class:`~milepost.pipelines.StepResult`.
    """

    step: str
    func: str
    upstream: tuple[str, ...]
    options: dict[str, Any]
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

    def result(self) -> StepResult:
        """This step as the engine's :class:`~milepost.pipelines.StepResult` (what
        ``resume`` hands the engine to reuse)."""
        return StepResult(
            step=self.step,
            status=self.status,
            attempts=self.attempts,
            started_at=self.started_at,
            ended_at=self.ended_at,
            cache_key=self.cache_key,
            inputs=dict(self.inputs),
            outputs=self.outputs,
            logs_key=self.logs_key,
            error=self.error,
            traceback=self.traceback,
            links=self.links,
            cached_from=self.cached_from,
        )

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self, extra={"duration_ms": self.duration_ms})

    def __repr__(self) -> str:
        why = f": {short(self.error)}" if self.error else ""
        return f"StepRun({self.step} {self.status}{why})"


@dataclass(frozen=True)
class PipelineRun:
    """One run of a pipeline.

    Attributes:
        run_id: 32 hex characters.
        pipeline: the pipeline's name.
        ref: ``module:attr`` it was loaded from (what ``resume`` and triggers load again).
        params: the parameters the run used (after parsing and defaults).
        status: ``running``, ``succeeded`` or ``failed``.
        runner: ``local`` or ``dask``.
        started_at, ended_at: epoch ms (UTC).
        code_version: ``commit`` and ``dirty`` of the git checkout (None outside one),
            ``source_sha256`` of the pipeline module's source file.
        resumed_from: the failed run this one resumed, or None.
        trigger: the trigger firing that launched it, or None.
        error: why the run failed (the failed step's error, or what stopped the runner).
        failed_step: the step that failed, or None.
        actor: who started it.
        steps: the steps in the plan's (topological) order.
    """

    run_id: str
    pipeline: str
    ref: str
    params: dict[str, Any]
    status: RunStatus
    runner: str
    started_at: int
    ended_at: int | None = None
    code_version: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None
    trigger: str | None = None
    error: str | None = None
    failed_step: str | None = None
    actor: str = ""
    steps: tuple[StepRun, ...] = ()
    _loader: Callable[[OutputRef], Any] | None = field(default=None, repr=False, compare=False)

    @property
    def duration_ms(self) -> int | None:
        """Wall time in ms, once the run ended."""
        return None if self.ended_at is None else self.ended_at - self.started_at

    def step(self, step: str) -> StepRun:
        """One step by id.

        Raises:
            NotFound: the run has no such step (the message lists close names).
        """
        for s in self.steps:
            if s.step == step:
                return s
        names = [s.step for s in self.steps]
        raise NotFound(
            f"Pipeline run {self.run_id} has no step {step!r}.{did_you_mean(step, names)}",
            hint="Its steps: " + (", ".join(names) or "none") + ".",
        )

    def outputs(self, step: str) -> Any:
        """The output value(s) of a succeeded or cached step, loaded from the artifact
        store: the value for a single return value, a tuple for a tuple-returning step.

        Raises:
            NotFound: no such step.
            InvalidInput: the step has no stored outputs (it failed, was skipped or has
                not run), or this record was not read through the service.
        """
        found = self.step(step)
        if not found.outputs:
            raise InvalidInput(
                f"Step {step!r} of pipeline run {self.run_id} has no stored outputs: it is "
                f"{found.status}.",
                hint="Only succeeded and cached steps have outputs.",
            )
        if self._loader is None:
            raise InvalidInput(
                "This PipelineRun was not read through the pipeline service; it cannot load "
                "outputs.",
                hint="Read it with milepost.get_runtime().pipelines.get_run(run_id).",
            )
        values = [self._loader(ref) for ref in found.outputs]
        if len(found.outputs) == 1 and found.outputs[0].name == "return":
            return values[0]
        return tuple(values)

    def counts(self) -> dict[str, int]:
        """How many steps ended in each status (every status present, zeros included)."""
        out = dict.fromkeys(("succeeded", "cached", "failed", "skipped", "running", "pending"), 0)
        for s in self.steps:
            out[s.status] = out.get(s.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self, extra={"duration_ms": self.duration_ms})

    def __repr__(self) -> str:
        why = f" at {self.failed_step}: {short(self.error)}" if self.failed_step else ""
        return (
            f"PipelineRun({self.run_id[:12]} {self.pipeline!r} {self.status}{why}, "
            f"{len(self.steps)} step{'' if len(self.steps) == 1 else 's'})"
        )


@dataclass(frozen=True)
class PipelineSummary:
    """A pipeline as seen in its runs: name, the ref of its latest run, how many runs,
    and the latest run's id, status and start."""

    name: str
    ref: str
    runs: int
    last_run_id: str
    last_status: RunStatus
    last_started_at: int

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)

    def __repr__(self) -> str:
        return f"PipelineSummary({self.name!r}, {self.runs} runs, last {self.last_status})"
