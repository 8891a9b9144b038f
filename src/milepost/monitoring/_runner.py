"""One monitor run: read the window's logged rows, then measure each check.

The window's rows are the endpoint's logged ``ok`` rows, shadows left out (their answers
reached nobody), only the monitor's model version's when it names one. The *reference
window* is the same length just before: ``[now - 2d, now - d)`` for a duration ``d``, the
N rows before the newest N for ``last N``. ``prediction_drift`` always compares with it;
``feature_drift`` compares with the model version's stored training profile when there is
one, else with it (each result's ``details["reference"]`` says which).

``last N`` reads back 1 hour, then 1 day, 7 days, 30 days, 366 days and all of the log
until it has 2N rows, so a busy endpoint's count window reads little.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from milepost.monitoring import checks as ck
from milepost.monitoring.predictions import read_predictions

if TYPE_CHECKING:
    import pandas as pd

    from milepost.monitoring.monitors import Monitor, Window
    from milepost.monitoring.service import MonitorSources

__all__ = ["LoggedWindow", "measure", "read_window"]

COLUMNS = [
    "request_id",
    "row",
    "ts",
    "model",
    "version",
    "role",
    "features",
    "prediction",
    "probabilities",
    "status",
]
_LOOKBACKS_MS = (3_600_000, 86_400_000, 7 * 86_400_000, 30 * 86_400_000, 366 * 86_400_000)


@dataclass(frozen=True)
class LoggedWindow:
    """The rows of a run's window and of its reference window (``ts`` in epoch ms)."""

    endpoints: list[str]
    start_ms: int | None
    end_ms: int
    current: pd.DataFrame
    reference: pd.DataFrame

    @property
    def rows(self) -> int:
        return len(self.current)


def _read(
    sources: MonitorSources, mon: Monitor, endpoints: list[str], since: int, until: int
) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    frames = []
    for ep in endpoints:
        table = read_predictions(
            sources.segments, ep, since_ms=since, until_ms=until, columns=COLUMNS
        )
        if table is not None and table.num_rows:
            # DuckDB answers in microseconds: epoch ms as integers from here on
            ts = table.column("ts").cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
            frames.append(
                table.set_column(table.schema.get_field_index("ts"), "ts", ts).to_pandas()
            )
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "ts" else object) for c in COLUMNS})
    df = pd.concat(frames, ignore_index=True)
    keep = (df["status"] == "ok") & (df["role"] != "shadow")
    if mon.model is not None:
        keep &= (df["model"] == mon.model) & (df["version"] == mon.version)
    out: pd.DataFrame = df[keep].sort_values(["ts", "request_id", "row"], kind="stable")
    return out.reset_index(drop=True)


def read_window(sources: MonitorSources, mon: Monitor, window: Window, now_ms: int) -> LoggedWindow:
    """The window ending at ``now_ms`` and its reference window (see the module docs)."""
    if mon.endpoint is not None:
        endpoints = [mon.endpoint]
    else:
        assert mon.model is not None and mon.version is not None
        endpoints = sources.endpoints_for(mon.model, mon.version)
    if window.duration_ms is not None:
        d = window.duration_ms
        df = _read(sources, mon, endpoints, now_ms - 2 * d, now_ms)
        start = now_ms - d
        return LoggedWindow(
            endpoints,
            start,
            now_ms,
            df[df["ts"] >= start].reset_index(drop=True),
            df[df["ts"] < start].reset_index(drop=True),
        )
    n = window.rows or 0
    since = 0
    for lookback in (*_LOOKBACKS_MS, 0):
        since = max(0, now_ms - lookback) if lookback else 0
        df = _read(sources, mon, endpoints, since, now_ms)
        if len(df) >= 2 * n or since == 0:
            break
    current = df.iloc[-n:].reset_index(drop=True)
    reference = df.iloc[max(0, len(df) - 2 * n) : len(df) - len(current)].reset_index(drop=True)
    first = int(current["ts"].iloc[0]) if len(current) else None
    return LoggedWindow(endpoints, first, now_ms, current, reference)


def _served_version(mon: Monitor, current: pd.DataFrame) -> tuple[str, int] | None:
    """The monitor's model version, else the one that served most of the window."""
    if mon.model is not None and mon.version is not None:
        return mon.model, mon.version
    pairs = Counter(zip(current["model"], current["version"], strict=True))
    if not pairs:
        return None
    (model, version), _ = pairs.most_common(1)[0]
    return str(model), int(version)


def _no_reference(check: str, rows: int, reason: str) -> list[ck.Measurement]:
    """Rows but nothing to compare them with: said so, nothing breached."""
    return [
        ck.Measurement(
            check, "rows", None, float(rows), None, False, rows, "no_reference", {"reason": reason}
        )
    ]


def _drift_check(
    check: str, window: LoggedWindow, mon: Monitor, profile: Any | None
) -> list[ck.Measurement]:
    frame = ck.features_frame if check == "feature_drift" else ck.predictions_frame
    current = frame(window.current)
    if profile is not None:
        return ck.drift_measurements(
            check, profile, current, mon.thresholds, details={"reference": "profile"}
        )
    if window.reference.empty:
        reason = "no logged rows in the previous window"
        if check == "feature_drift":
            reason = "no stored profile for the model version and " + reason
        return _no_reference(check, window.rows, reason)
    details: dict[str, Any] = {
        "reference": "previous_window",
        "reference_rows": len(window.reference),
    }
    return ck.drift_measurements(
        check, frame(window.reference), current, mon.thresholds, details=details
    )


def _skew_check(
    sources: MonitorSources, mon: Monitor, window: LoggedWindow
) -> list[ck.Measurement]:
    """``mismatch_share`` per pinned feature: served values that differ from the offline
    path's at the request's time; ``no_reference`` when nothing could be compared."""
    out: list[ck.Measurement] = []
    limit = ck.threshold_for("mismatch_share", mon.thresholds)
    for ep in window.endpoints:
        for row in sources.skew(
            ep,
            model=mon.model,
            version=mon.version,
            since_ms=window.start_ms or 0,
            until_ms=window.end_ms,
        ):
            value = row.get("mismatch_share")
            details = {k: v for k, v in row.items() if k not in ("feature", "mismatch_share")}
            details["endpoint"] = ep
            if value is None:
                details["reason"] = "no value could be compared (no offline or no served value)"
                status, hit = "no_reference", False
            else:
                hit = ck.crossed("mismatch_share", value, limit)
                status = "breached" if hit else "ok"
            compared = int(row.get("compared", 0))
            out.append(
                ck.Measurement(
                    "skew",
                    "mismatch_share",
                    row.get("feature"),
                    value,
                    limit,
                    hit,
                    compared,
                    status,
                    details,
                )
            )
    if not out:
        reason = "the model versions served in the window pin no features: nothing to compare"
        out.append(
            ck.Measurement(
                "skew",
                "rows",
                None,
                float(window.rows),
                None,
                False,
                window.rows,
                "no_reference",
                {"reason": reason},
            )
        )
    return out


def _labels(sources: MonitorSources, window: LoggedWindow) -> dict[tuple[str, int], Any]:
    """``(request_id, row) -> label`` for the window's requests labelled so far (read by
    the time in the request ids, from ``LABEL_MARGIN_MS`` before the first row)."""
    from milepost.monitoring.labels import LABEL_MARGIN_MS

    first = int(window.current["ts"].iloc[0]) if window.rows else window.end_ms
    out: dict[tuple[str, int], Any] = {}
    for ep in window.endpoints:
        rows = sources.labels.feedback_between(ep, first - LABEL_MARGIN_MS, window.end_ms)
        out.update({(rid, row): label for rid, row, label, _at in rows})
    return out


def measure(sources: MonitorSources, mon: Monitor, window: LoggedWindow) -> list[ck.Measurement]:
    """Every check of the monitor over the window; a failing check gives an ``error``
    result and the others still run; an empty window gives ``empty`` results."""
    if window.rows == 0:
        return ck.empty_measurements(mon.checks)
    out: list[ck.Measurement] = []
    for kind in mon.checks:
        try:
            if kind in ("feature_drift", "prediction_drift"):
                served = _served_version(mon, window.current)
                profile = None
                if kind == "feature_drift" and served is not None:
                    profile = sources.reference_profile(*served)
                out.extend(_drift_check(kind, window, mon, profile))
            elif kind == "performance":
                out.extend(
                    ck.performance_measurements(
                        window.current, _labels(sources, window), mon.thresholds
                    )
                )
            elif kind == "skew":
                out.extend(_skew_check(sources, mon, window))
        except Exception as exc:  # a failing check is a result, not a failed run
            out.append(ck.error_measurement(kind, exc, window.rows))
    return out
