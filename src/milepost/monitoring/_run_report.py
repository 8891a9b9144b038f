"""A monitor run's report: part E's self-contained HTML (and JSON) for one run.

The run's drift result (kept in memory by :meth:`MonitorService.run`) is the report's
body; the monitor's stored results are its drift and performance over time, its recent
alerts the alert table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from milepost import _validate as check
from milepost.errors import InvalidInput
from milepost.monitoring.monitors import MonitorRun

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from milepost.monitoring.service import MonitorService

__all__ = ["write_run_report"]


def write_run_report(
    service: MonitorService, path: str | os.PathLike[str], run: MonitorRun
) -> tuple[Path, Path]:
    """See :meth:`MonitorService.write_report`."""
    from milepost.monitoring.report import write_report

    if not isinstance(run, MonitorRun):
        raise InvalidInput(
            f"write_report takes a MonitorRun, not {type(run).__name__}.",
            hint="Pass what run() returned.",
        )
    path = check.local_path(path, "report path")
    drift = run.drift_results
    kind = "feature_drift" if "feature_drift" in drift else "prediction_drift"
    result = drift.get(kind)
    if result is None:
        raise InvalidInput(
            f"Run {run.run_id[:12]} of monitor {run.monitor!r} computed no drift "
            f"(status {run.status}): there is nothing to report.",
            hint="Report a run of a monitor with feature_drift or prediction_drift "
            "whose window has rows and a reference.",
        )
    history = [r.to_dict() for r in service.results(run.monitor)]
    try:
        return write_report(
            path,
            result,
            title=f"Monitor {run.monitor}",
            history=history,
            performance=history,
            alerts=service.alerts(run.monitor, limit=50),
            reference_window=_reference_label(run, kind),
            current_window=(run.window_start, run.window_end),
        )
    except OSError as exc:
        raise InvalidInput(
            f"Cannot write the report at {str(path)!r}: {exc.strerror or exc}.",
            hint="Give a path in a writable directory (PATH.html and PATH.json).",
        ) from None


def _reference_label(run: MonitorRun, kind: str) -> str:
    """What a run's drift check compared with, in words (for the report)."""
    summary = next(
        (r for r in run.results if r.check == kind and r.metric == "drifted_share"), None
    )
    details = summary.details if summary is not None else {}
    if details.get("reference") == "profile":
        return "the model version's training profile"
    rows = details.get("reference_rows")
    return "the previous window" + (f" ({rows:,} rows)" if rows else "")
