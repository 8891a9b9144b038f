"""Prometheus metrics per endpoint and variant (multi-process aware).

When ``PROMETHEUS_MULTIPROC_DIR`` is set (the supervisor sets it), every replica writes
its samples there and ``/metrics`` on any replica reports the sum over all of them.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["exposition", "observe"]

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUESTS = Counter("milepost_requests", "Prediction requests.", ["endpoint", "variant", "status"])
LATENCY = Histogram(
    "milepost_request_latency_seconds",
    "Prediction latency in the replica.",
    ["endpoint", "variant"],
    buckets=_BUCKETS,
)


# (endpoint, variant, status) -> the labelled counter and histogram: a label lookup costs
# more than the increment itself on the prediction path. Children survive a fork (each
# re-opens its process's file on the first write after one).
_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def observe(endpoint: str, variant: str, status: str, seconds: float) -> None:
    """Count a request and its latency."""
    key = (endpoint, variant, status)
    children = _CHILDREN.get(key)
    if children is None:
        children = (REQUESTS.labels(*key), LATENCY.labels(endpoint, variant))
        _CHILDREN[key] = children
    children[0].inc()
    children[1].observe(seconds)


def exposition() -> bytes:
    """The text exposition format (summed across replicas in multi-process mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(registry))
    return bytes(generate_latest())
