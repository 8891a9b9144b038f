"""Monitoring: the distribution statistics and the prediction-log reader.

One implementation of each statistic serves data validation (the ``distribution``
check), canary analysis (prediction PSI) and the monitors::

    from milepost.monitoring import psi_from_samples, ks_test, variant_stats

- :mod:`milepost.monitoring.stats`: PSI (numbers binned at the reference's quantiles,
  categories one bin each, empty bins floored at ``PSI_EPS``) and the two-sample KS test;
- :mod:`milepost.monitoring.predictions`: an endpoint's logged requests over a window,
  per-variant request/error/latency figures, prediction counts and PSI between variants.

Layering: monitoring reads stores through small protocols; serving and data call it,
never the reverse.
"""

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
from milepost.monitoring.stats import (
    PSI_EPS,
    KsResult,
    align_counts,
    bin_counts,
    ks_test,
    psi,
    psi_bins,
    psi_categorical,
    psi_from_samples,
)

__all__ = [
    "PSI_EPS",
    "KsResult",
    "SegmentSource",
    "VariantStats",
    "align_counts",
    "bin_counts",
    "fmt_ms",
    "ks_test",
    "prediction_counts",
    "prediction_psi",
    "psi",
    "psi_bins",
    "psi_categorical",
    "psi_from_samples",
    "read_predictions",
    "segment_paths",
    "variant_stats",
]
