"""What a monitor is: its records, and the rules for its window, schedule and thresholds.

A **monitor** computes checks on an endpoint's prediction log (optionally only one model
version's rows) over a window, on a schedule, and compares each value with a threshold.

- **Checks** (:data:`CHECKS`): ``feature_drift`` (the logged feature vectors of the window
  against the model version's stored reference profile, or the previous window when no
  profile is stored), ``prediction_drift`` (the window's predictions against the previous
  window's, i.e. the same length just before), ``performance`` (predictions joined with
  ground truth sent later; also how many are still unlabelled) and ``skew``
  (training-serving skew per entity, computed by the serving side: per pinned feature,
  the share of served values that differ from the offline path's at the request's time,
  ``mismatch_share``, alerting by default at 0.001) and ``multivariate`` (a classifier
  trained to tell the window's feature vectors from the previous window's: its AUC,
  ``domain_auc``, alerting when it tells them apart, for drift no single column shows).
- **Window** (:class:`Window`): ``"1h"`` (``s``, ``m``, ``h``, ``d``, ``w``: the time range
  ending at the run's time) or ``"last 1000"`` (the newest 1,000 logged rows up to it).
- **Schedule** (:class:`Schedule`): a five-field cron expression in UTC
  (``"*/5 * * * *"``) or ``"every 10m"`` (slots at multiples of 10 minutes since the
  epoch); ``None``: run only when asked.
- **Thresholds** (:data:`METRICS`): ``{metric: value}``. Distances (``psi``,
  ``wasserstein``, ``jensen_shannon``, ``mismatch_share``, errors ``mae``, ``rmse``,
  ``log_loss``) breach *at or above* their threshold; p-values of tests (``ks``,
  ``chi_square``) and scores (``accuracy``, ``precision_macro``, ``recall_macro``,
  ``f1_macro``, ``roc_auc``, ``r2``, ``labelled_share``) breach *below* it, as in
  :func:`milepost.monitoring.drift`. Every drift method runs; those named in the
  thresholds with those thresholds, and a threshold named for one kind's methods
  (numbers or categories) replaces that kind's counted method as what alerts.
  ``domain_auc`` breaches at or above its threshold (default: the classifier's verdict).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from milepost import _validate as check
from milepost._records import record_dict, short
from milepost.errors import InvalidInput, did_you_mean

__all__ = [
    "CHECKS",
    "DRIFT_METHODS",
    "METRICS",
    "Alert",
    "Monitor",
    "MonitorResult",
    "MonitorRun",
    "Schedule",
    "Window",
    "check_thresholds",
    "to_ms",
]

CHECKS = ("feature_drift", "prediction_drift", "performance", "skew", "multivariate")
DRIFT_METHODS = ("psi", "ks", "wasserstein", "jensen_shannon", "chi_square")

Direction = Literal["above", "below"]

#: metric -> (breaches when the value is above/below the threshold, default threshold or
#: None when the metric alerts only with a threshold given).
METRICS: dict[str, tuple[Direction, float | None]] = {
    "psi": ("above", 0.1),
    "ks": ("below", 0.05),
    "wasserstein": ("above", 0.1),
    "jensen_shannon": ("above", 0.1),
    "chi_square": ("below", 0.05),
    "drifted_share": ("above", None),
    "accuracy": ("below", None),
    "precision_macro": ("below", None),
    "recall_macro": ("below", None),
    "f1_macro": ("below", None),
    "roc_auc": ("below", None),
    "log_loss": ("above", None),
    "estimated_accuracy": ("below", None),
    "estimated_roc_auc": ("below", None),
    "mae": ("above", None),
    "rmse": ("above", None),
    "r2": ("below", None),
    "labelled_share": ("below", None),
    "mismatch_share": ("above", 0.001),  # one served value in a thousand differs
    "domain_auc": ("above", None),  # the domain classifier's own verdict alerts by default
}

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_LAST = re.compile(r"^\s*last\s+(\d+)\s*$")
_EVERY = re.compile(r"^\s*every\s+(.+)$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_MAX_WINDOW_MS = 366 * 86_400_000
_MAX_ROWS = 10_000_000


def to_ms(value: datetime | int, what: str = "now") -> int:
    """A time as epoch milliseconds: an aware ``datetime`` or epoch milliseconds (``int``)."""
    ms = check.timestamp_ms(value, what)
    if ms < 0:
        raise InvalidInput(f"{what} {ms} is before 1970.", hint="Times are epoch milliseconds.")
    return ms


def _duration_ms(text: str) -> int | None:
    m = _DURATION.match(text)
    return None if m is None else int(m.group(1)) * _UNIT_MS[m.group(2)]


@dataclass(frozen=True)
class Window:
    """A monitor's window: ``duration_ms`` (a time range ending at the run) or ``rows``
    (the newest N logged rows up to the run)."""

    text: str
    duration_ms: int | None = None
    rows: int | None = None

    @classmethod
    def parse(cls, text: object) -> Window:
        """``"1h"``, ``"30m"``, ``"7d"`` or ``"last 1000"``; anything else is InvalidInput."""
        hint = 'Write a duration ("90s", "30m", "1h", "7d", "2w") or a count ("last 1000").'
        if not isinstance(text, str):
            raise InvalidInput(f"A window is text, not {type(text).__name__}.", hint=hint)
        ms = _duration_ms(text)
        if ms is not None:
            if not 0 < ms <= _MAX_WINDOW_MS:
                raise InvalidInput(f"Window {text!r} is outside 1s to 366d.", hint=hint)
            return cls(text.strip(), duration_ms=ms)
        m = _LAST.match(text)
        if m is not None:
            n = int(m.group(1))
            if not 0 < n <= _MAX_ROWS:
                raise InvalidInput(f"Window {text!r}: the count is 1 to {_MAX_ROWS:,}.", hint=hint)
            return cls(f"last {n}", rows=n)
        raise InvalidInput(f"Window {text!r} is not understood.", hint=hint)


@dataclass(frozen=True)
class Schedule:
    """When a monitor runs: a cron expression (UTC) or a fixed interval."""

    text: str
    interval_ms: int | None = None

    @classmethod
    def parse(cls, text: object) -> Schedule:
        """``"*/5 * * * *"`` (cron, five fields, UTC) or ``"every 10m"``."""
        hint = 'Write cron in UTC ("*/5 * * * *": every 5 minutes) or "every 10m".'
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"A schedule is text, got {text!r}.", hint=hint)
        m = _EVERY.match(text)
        if m is not None:
            ms = _duration_ms(m.group(1))
            if ms is None or not 1000 <= ms <= _MAX_WINDOW_MS:
                raise InvalidInput(f"Schedule {text!r}: the interval is not understood.", hint=hint)
            return cls(f"every {m.group(1).strip()}", interval_ms=ms)
        from croniter import croniter

        expr = " ".join(text.split())
        if len(expr.split()) != 5 or not croniter.is_valid(expr):
            raise InvalidInput(f"Schedule {text!r} is not a five-field cron expression.", hint=hint)
        return cls(expr)

    def next_after(self, ms: int) -> int:
        """The first slot strictly after ``ms`` (epoch milliseconds)."""
        if self.interval_ms is not None:
            return (ms // self.interval_ms + 1) * self.interval_ms
        from croniter import croniter

        start = datetime.fromtimestamp(ms / 1000, tz=UTC)
        return int(croniter(self.text, start).get_next(float) * 1000)


def check_thresholds(value: object) -> dict[str, float]:
    """``{metric: number}`` with known metric names (see :data:`METRICS`)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(
            f"Thresholds are a mapping of metric to number, not {type(value).__name__}.",
            hint='For example {"psi": 0.2, "accuracy": 0.8}.',
        )
    out: dict[str, float] = {}
    for key, number in value.items():
        if key not in METRICS:
            raise InvalidInput(
                f"Unknown threshold metric {key!r}.{did_you_mean(str(key), METRICS)}",
                hint="Metrics: " + ", ".join(METRICS) + ".",
            )
        if isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number):
            raise InvalidInput(
                f"Threshold {key}={number!r} is not a number.",
                hint=f"Give a number, e.g. {{{key!r}: {METRICS[key][1] or 0.5}}}.",
            )
        limit = float(number)
        if key in ("ks", "chi_square") and not 0 < limit < 1:
            raise InvalidInput(
                f"Threshold {key}={number!r}: a p-value threshold is between 0 and 1.",
                hint=f"For example {{{key!r}: 0.05}}: alert when the p-value is below 5%.",
            )
        if not math.isfinite(limit) or (key in DRIFT_METHODS and limit < 0):
            raise InvalidInput(
                f"Threshold {key}={number!r} is not a finite number"
                + (" >= 0." if key in DRIFT_METHODS else "."),
                hint=f"For example {{{key!r}: {METRICS[key][1] or 0.5}}}.",
            )
        out[key] = limit
    return out


@dataclass(frozen=True)
class Monitor:
    """A stored monitor (see the module docstring for each field's rules)."""

    name: str
    endpoint: str | None
    model: str | None
    version: int | None
    checks: list[str]
    window: str
    schedule: str | None
    thresholds: dict[str, float]
    webhook: str | None
    enabled: bool
    next_run_at: int | None  # epoch ms of the next schedule slot (None: manual only)
    last_run_at: int | None
    created_by: str
    created_at: int
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        target = self.endpoint or f"{self.model} v{self.version}"
        what = short(f"{self.name} on {target}: {','.join(self.checks)} over {self.window}")
        return f"Monitor({what})"


@dataclass(frozen=True)
class MonitorResult:
    """One measured value of a run: a point of the (monitor, metric, feature) time series.

    ``status``: ``ok`` (within threshold), ``breached``, ``empty`` (no logged rows in the
    window: nothing measured, no alert), ``no_reference`` (nothing to compare with),
    ``error`` (the check failed; ``details["error"]`` says why; the run goes on).
    """

    monitor: str
    run_id: str
    run_at: int
    window_start: int | None
    window_end: int
    check: str
    metric: str
    feature: str | None
    value: float | None
    threshold: float | None
    breached: bool
    rows: int
    status: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)


@dataclass(frozen=True)
class Alert:
    """A crossed threshold. ``delivered``: None (no webhook), True (2xx) or False (see
    ``delivery_error``)."""

    alert_id: int
    monitor: str
    run_id: str
    raised_at: int
    check: str
    metric: str
    feature: str | None
    value: float | None
    threshold: float | None
    message: str
    delivered: bool | None = None
    delivery_error: str | None = None
    acknowledged_at: int | None = None
    acknowledged_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return record_dict(self)

    def __repr__(self) -> str:
        return f"Alert({self.alert_id} {self.monitor}: {self.message})"


@dataclass(frozen=True)
class MonitorRun:
    """What one run of a monitor measured and raised."""

    monitor: str
    run_id: str
    run_at: int
    window_start: int | None
    window_end: int
    rows: int
    results: list[MonitorResult]
    alerts: list[Alert]
    # check -> the drift result it computed (feature_drift, prediction_drift), for
    # :meth:`MonitorService.write_report`; kept in memory only
    _drift: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def drift_results(self) -> dict[str, Any]:
        """The :class:`~milepost.monitoring.DriftResult` of each drift check of this run
        (not stored: a later run computes its own)."""
        return dict(self._drift)

    @property
    def breached(self) -> bool:
        """Whether any result crossed its threshold."""
        return any(r.breached for r in self.results)

    @property
    def status(self) -> str:
        """The first of ``breached``, ``error``, ``empty`` (no rows in the window),
        ``no_reference`` (nothing to compare with) that a result has, else ``ok``."""
        statuses = {r.status for r in self.results}
        for s in ("breached", "error", "empty", "no_reference"):
            if s in statuses:
                return s
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with ``status`` and ``breached``)."""
        return record_dict(self, extra={"status": self.status, "breached": self.breached})

    def __repr__(self) -> str:
        return (
            f"MonitorRun({self.monitor} {self.status}: {len(self.results)} results, "
            f"{len(self.alerts)} alerts, {self.rows:,} rows)"
        )
