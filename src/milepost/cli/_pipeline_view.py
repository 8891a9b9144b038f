"""Step progress of a pipeline run as it happens, and the run's outcome afterwards.

:class:`StepView` is the engine's ``on_event`` callback: on a terminal it keeps a Rich
live table of the steps (status, attempts, duration, "cached from <run>"); otherwise
(a pipe, a log file, CI) it prints one plain line per event. Events arrive from the
engine's thread; the table is only read by Rich's refresh thread under a lock.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from milepost.cli._output import console

if TYPE_CHECKING:
    from types import TracebackType

    from milepost.pipelines.models import PipelineRun

__all__ = ["STEP_STYLE", "StepView", "fmt_duration", "summary_line"]

STEP_STYLE = {
    "pending": "dim",
    "running": "cyan",
    "retrying": "magenta",
    "succeeded": "green",
    "cached": "blue",
    "failed": "red",
    "skipped": "yellow",
}
_DONE = ("succeeded", "cached", "failed", "skipped")


def fmt_duration(ms: int | float | None) -> str:
    """``0.3 s``, ``12.4 s``, ``3 min 5 s``; ``-`` when unknown."""
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def summary_line(run: PipelineRun) -> str:
    """``7 steps: 5 succeeded, 2 cached, 0 failed in 3.2 s`` (skipped ones when any)."""
    counts = run.counts()
    parts = [f"{counts['succeeded']} succeeded", f"{counts['cached']} cached"]
    parts.append(f"{counts['failed']} failed")
    if counts["skipped"]:
        parts.append(f"{counts['skipped']} skipped")
    n = len(run.steps)
    return f"{n} step{'s' if n != 1 else ''}: {', '.join(parts)} in {fmt_duration(run.duration_ms)}"


class _Row:
    def __init__(self) -> None:
        self.status = "pending"
        self.attempts = 0
        self.started: float | None = None
        self.elapsed: float | None = None
        self.cached_from: str | None = None


class StepView:
    """``on_event`` for :meth:`PipelineService.run`: a live table or plain lines.

    Args:
        live: a live table (default: when stdout is a terminal).
        clock: monotonic seconds (for durations).
    """

    def __init__(self, *, live: bool | None = None, clock: Any = time.monotonic) -> None:
        self.live_table = console.is_terminal if live is None else live
        self.clock = clock
        self.rows: dict[str, _Row] = {}
        self._lock = threading.Lock()
        self._live: Any = None

    def __enter__(self) -> StepView:
        if self.live_table:
            from rich.live import Live

            self._live = Live(
                get_renderable=self.table, console=console, refresh_per_second=4, transient=False
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def __call__(self, step: str, status: str, info: dict[str, Any] | None = None) -> None:
        """One engine event: ``started`` (``attempt``), ``retrying`` (``attempt``,
        ``delay``, ``error``), ``cache_invalid`` (``error``) or a final status
        (``attempts``, ``error``, ``cached_from``, ``duration_ms``)."""
        info = info or {}
        now = self.clock()
        with self._lock:
            row = self.rows.setdefault(step, _Row())
            if status in ("started", "running"):
                row.status = "running"
                row.attempts = int(info.get("attempt", row.attempts + 1))
                if row.started is None:
                    row.started = now
            elif status == "retrying":
                row.status = "retrying"
            elif status in _DONE:
                row.status = status
                row.attempts = int(info.get("attempts", row.attempts))
                if info.get("duration_ms") is not None:
                    row.elapsed = float(info["duration_ms"]) / 1000
                elif row.started is not None:
                    row.elapsed = now - row.started
                row.cached_from = info.get("cached_from") or row.cached_from
        if not self.live_table:
            console.print(self._line(step, status, row, info), highlight=False, soft_wrap=True)

    def _line(self, step: str, status: str, row: _Row, info: dict[str, Any]) -> str:
        style = STEP_STYLE.get(row.status, "")
        text = f"[{style}]{escape(step)} {status}[/]" if style else escape(f"{step} {status}")
        if status in ("started", "running") and row.attempts > 1:
            text += f" (attempt {row.attempts})"
        if status == "retrying" and info.get("delay") is not None:
            text += f" in {float(info['delay']):.1f} s after attempt {info.get('attempt', '?')}"
        if status in ("succeeded", "failed") and row.elapsed is not None:
            text += f" in {fmt_duration(row.elapsed * 1000)}"
        if status == "cached" and row.cached_from:
            text += f" from run {row.cached_from[:12]}"
        error = info.get("error")
        if error and status in ("failed", "skipped", "retrying", "cache_invalid"):
            text += f": {escape(str(error))}"
        return text

    def table(self) -> Table:
        """The steps so far: status, attempts, duration, cache source."""
        table = Table("step", "status", "attempts", "duration", "cache", box=None, pad_edge=False)
        now = self.clock()
        with self._lock:
            for step, row in self.rows.items():
                elapsed = row.elapsed
                if elapsed is None and row.started is not None:
                    elapsed = now - row.started
                style = STEP_STYLE.get(row.status, "")
                table.add_row(
                    escape(step),
                    f"[{style}]{row.status}[/]" if style else row.status,
                    str(row.attempts or "-"),
                    fmt_duration(None if elapsed is None else elapsed * 1000),
                    f"cached from {row.cached_from[:12]}" if row.cached_from else "",
                )
        return table
