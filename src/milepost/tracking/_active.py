"""The process's tracking state: the active-run stack and the tracking service per context.

The stack is per thread, as in MLflow. ``milepost.start_run()`` pushes onto it; capability
code reads only :func:`active_run_id` to link what it records (a validation, a feature
retrieval) to the run in progress, without importing the fluent API above it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

from milepost.tracking.service import TrackingService

if TYPE_CHECKING:
    from milepost.stores.context import StoreContext

__all__ = ["RunHandle", "active_run_id", "run_stack", "tracking_service"]


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
