"""Monitoring: the distribution statistics and the prediction-log reader.

One implementation of each statistic serves data validation (the ``distribution``
check), canary analysis (prediction PSI) and the monitors::

    from milepost.monitoring import drift, profile, psi_from_samples, ks_test

- :mod:`milepost.monitoring.feature_drift`: ``drift(reference, current)`` compares two windows
  per feature and method (PSI, KS, Wasserstein, Jensen-Shannon, chi-square) with a
  dataset verdict that an important feature's drift cannot hide behind quiet ones;
- :mod:`milepost.monitoring.profiles`: ``profile(frame)``, a reference summary whose size
  does not grow with the rows, stored with a model version and read instead of the
  training set;

- :mod:`milepost.monitoring.stats`: PSI (numbers binned at the reference's quantiles,
  categories one bin each, empty bins floored at ``PSI_EPS``), the two-sample KS test,
  the normalised Wasserstein distance, the Jensen-Shannon distance and the chi-square
  test of homogeneity;
- :mod:`milepost.monitoring.predictions`: an endpoint's logged requests over a window,
  per-variant request/error/latency figures, prediction counts and PSI between variants;
- :mod:`milepost.monitoring.service`: :class:`MonitorService`, monitors on an endpoint or
  model version (checks, window, schedule, thresholds), their results as time series and
  their alerts (``milepost monitor ...``; ``Runtime.monitors``);
- :mod:`milepost.monitoring.report`: the self-contained HTML report (and its JSON) of a
  drift result, with drift and performance over time (``write_report``).

Layering: monitoring reads stores through small protocols; serving and data call it,
never the reverse. Names load on first use (PEP 562): importing the package costs
neither NumPy nor DuckDB.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milepost.monitoring.feature_drift import DEFAULT_THRESHOLDS, DriftResult, drift
    from milepost.monitoring.monitors import (
        CHECKS,
        Alert,
        Monitor,
        MonitorResult,
        MonitorRun,
        Schedule,
        Window,
    )
    from milepost.monitoring.predictions import (
        SegmentSource,
        VariantStats,
        fmt_ms,
        prediction_counts,
        prediction_psi,
        read_predictions,
        segment_paths,
        variant_stats,
    )
    from milepost.monitoring.profiles import ColumnProfile, Profile, profile
    from milepost.monitoring.report import render_report, report_json, write_report
    from milepost.monitoring.service import MonitorService, MonitorSources
    from milepost.monitoring.stats import (
        PSI_EPS,
        ChiSquareResult,
        KsResult,
        align_counts,
        bin_counts,
        chi_square,
        jensen_shannon,
        js_categorical,
        js_from_samples,
        ks_test,
        psi,
        psi_bins,
        psi_categorical,
        psi_from_samples,
        wasserstein,
    )

__all__ = [
    "CHECKS",
    "DEFAULT_THRESHOLDS",
    "PSI_EPS",
    "Alert",
    "Calibration",
    "ChiSquareResult",
    "ColumnProfile",
    "DomainClassifierResult",
    "DriftResult",
    "KsResult",
    "LabelSource",
    "LabelledPredictions",
    "Monitor",
    "MonitorResult",
    "MonitorRun",
    "MonitorService",
    "MonitorSources",
    "Performance",
    "PerformanceEstimate",
    "Profile",
    "Schedule",
    "SegmentSource",
    "VariantStats",
    "Window",
    "align_counts",
    "bin_counts",
    "check_calibration",
    "chi_square",
    "domain_classifier_drift",
    "drift",
    "estimate_performance",
    "expected_roc_auc",
    "fmt_ms",
    "jensen_shannon",
    "js_categorical",
    "js_from_samples",
    "ks_test",
    "labelled_predictions",
    "logged_probabilities",
    "performance_over_time",
    "prediction_counts",
    "prediction_psi",
    "profile",
    "psi",
    "psi_bins",
    "psi_categorical",
    "psi_from_samples",
    "read_predictions",
    "realised_performance",
    "render_report",
    "report_json",
    "segment_paths",
    "variant_stats",
    "wasserstein",
    "write_report",
]

# Public name -> the module that defines it.
_LAZY: dict[str, str] = {
    # monitors (definitions, runs, alerts)
    **dict.fromkeys(
        ("CHECKS", "Alert", "Monitor", "MonitorResult", "MonitorRun", "Schedule", "Window"),
        "milepost.monitoring.monitors",
    ),
    **dict.fromkeys(("MonitorService", "MonitorSources"), "milepost.monitoring.service"),
    # -- performance, estimation, late labels, multivariate drift (part P) --
    **dict.fromkeys(
        (
            "Calibration",
            "PerformanceEstimate",
            "check_calibration",
            "estimate_performance",
            "expected_roc_auc",
        ),
        "milepost.monitoring.estimation",
    ),
    **dict.fromkeys(
        ("LabelSource", "LabelledPredictions", "labelled_predictions", "logged_probabilities"),
        "milepost.monitoring.labels",
    ),
    **dict.fromkeys(
        ("DomainClassifierResult", "domain_classifier_drift"),
        "milepost.monitoring.multivariate",
    ),
    **dict.fromkeys(
        ("Performance", "performance_over_time", "realised_performance"),
        "milepost.monitoring.performance",
    ),
    **dict.fromkeys(
        (
            "SegmentSource",
            "VariantStats",
            "fmt_ms",
            "prediction_counts",
            "prediction_psi",
            "read_predictions",
            "segment_paths",
            "variant_stats",
        ),
        "milepost.monitoring.predictions",
    ),
    **dict.fromkeys(("render_report", "report_json", "write_report"), "milepost.monitoring.report"),
    **dict.fromkeys(
        (
            "PSI_EPS",
            "ChiSquareResult",
            "KsResult",
            "align_counts",
            "bin_counts",
            "chi_square",
            "jensen_shannon",
            "js_categorical",
            "js_from_samples",
            "ks_test",
            "psi",
            "psi_bins",
            "psi_categorical",
            "psi_from_samples",
            "wasserstein",
        ),
        "milepost.monitoring.stats",
    ),
    **dict.fromkeys(
        ("DEFAULT_THRESHOLDS", "DriftResult", "drift"), "milepost.monitoring.feature_drift"
    ),
    **dict.fromkeys(("ColumnProfile", "Profile", "profile"), "milepost.monitoring.profiles"),
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it as a module attribute."""
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(target), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
