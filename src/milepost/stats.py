"""Moved to :mod:`milepost.monitoring.stats`; this module re-exports its names for code
written against ``milepost.stats``."""

from milepost.monitoring.stats import KsResult, ks_test, psi, psi_bins, psi_from_samples

__all__ = ["KsResult", "ks_test", "psi", "psi_bins", "psi_from_samples"]
