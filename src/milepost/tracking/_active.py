"""The process's tracking state: the active-run stack and the tracking service per context.

The stack is per thread, as in MLflow. ``milepost.start_run()`` pushes onto it; capability
code reads only :func:`active_run_id` to link what it records (a validation, a feature
retrieval) to the run in progress, without importing the fluent API above it.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from typing import TYPE_CHECKING, Protocol

from milepost.tracking.service import TrackingService

if TYPE_CHECKING:
    from collections.abc import Iterator

    from milepost.stores.context import StoreContext

__all__ = [
    "RunHandle",
    "StepScope",
    "active_run_id",
    "default_tags",
    "note_started",
    "run_stack",
    "step_scope",
    "tracking_service",
]


class RunHandle(Protocol):
    """What the stack holds: anything that names a run (``milepost.ActiveRun``)."""

    @property
    def run_id(self) -> str: ...


_local = threading.local()


def run_stack() -> list[RunHandle]:
    """This thread's stack of active runs, innermost last (mutable: the caller owns it)."""
    stack: list[RunHandle] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def active_run_id() -> str | None:
    """The id of this thread's innermost active run, if any."""
    stack = run_stack()
    return stack[-1].run_id if stack else None


def tracking_service(ctx: StoreContext) -> TrackingService:
    """The tracking service of a store context (one per context: it owns the writer)."""
    return ctx.component(TrackingService, lambda c: TrackingService(c.db, c.blobs, c.settings))


# -- runs started inside a pipeline step ----------------------------------------------


class StepScope:
    """Tags every run started in this context gets, and the ids of the runs started.

    The pipeline engine opens one around a step (``milepost.pipeline_run``,
    ``milepost.pipeline_step``) so that runs the step starts are tagged and linked to it.
    It is a context variable: runs started in threads the step spawns itself are not
    covered.
    """

    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = dict(tags)
        self.started: list[str] = []


_scope: contextvars.ContextVar[StepScope | None] = contextvars.ContextVar(
    "milepost_step_scope", default=None
)


@contextlib.contextmanager
def step_scope(tags: dict[str, str]) -> Iterator[StepScope]:
    """Tag runs started inside the block with ``tags``; the scope lists their ids."""
    scope = StepScope(tags)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def default_tags() -> dict[str, str]:
    """The tags a run started now gets by default (empty outside a step scope)."""
    scope = _scope.get()
    return dict(scope.tags) if scope is not None else {}


def note_started(run_id: str) -> None:
    """Record that a run was started (the step scope, if any, links it)."""
    scope = _scope.get()
    if scope is not None:
        scope.started.append(run_id)
