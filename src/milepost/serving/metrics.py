"""Prometheus metrics per endpoint and variant (multi-process aware).

When ``PROMETHEUS_MULTIPROC_DIR`` is set (the supervisor sets it), every replica writes
its samples there and ``/metrics`` on any replica reports the sum over all of them.

A request's count and latency are queued (a list append) and written in batches: by the
engine's routing poller twice a second, by ``/metrics`` before it answers, at close, and
whenever 10,000 are waiting. Writing one sample costs several microseconds (a label
lookup, a lock and an mmap write per series in multi-process mode); a batch writes each
series once. Another replica's samples may so be up to half a second late in a scrape.
"""

from __future__ import annotations

import bisect
import os
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["LOG_DROPPED", "exposition", "flush", "observe"]

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUESTS = Counter("milepost_requests", "Prediction requests.", ["endpoint", "variant", "status"])
LATENCY = Histogram(
    "milepost_request_latency_seconds",
    "Prediction latency in the replica.",
    ["endpoint", "variant"],
    buckets=_BUCKETS,
)

LOG_DROPPED = Counter(
    "milepost_prediction_log_dropped",
    "Prediction log rows dropped because the replica's log buffer was full.",
    ["endpoint"],
)

FLUSH_AT = 10_000
_PENDING: list[tuple[str, str, str, float]] = []
_FLUSHING = threading.Lock()
# a forked child starts with nothing queued (its parent's samples are its parent's)
os.register_at_fork(after_in_child=_PENDING.clear)


def observe(endpoint: str, variant: str, status: str, seconds: float) -> None:
    """Count a request and its latency (queued; see :func:`flush`)."""
    _PENDING.append((endpoint, variant, status, seconds))
    if len(_PENDING) >= FLUSH_AT:
        flush()


def flush() -> None:
    """Write the queued samples, each series once."""
    with _FLUSHING:
        n = len(_PENDING)
        if not n:
            return
        batch = _PENDING[:n]
        del _PENDING[:n]  # appends made meanwhile stay queued (both steps hold the GIL)
        counts: dict[tuple[str, str, str], int] = {}
        latencies: dict[tuple[str, str], list[float]] = {}
        for endpoint, variant, status, seconds in batch:
            key = (endpoint, variant, status)
            counts[key] = counts.get(key, 0) + 1
            latencies.setdefault((endpoint, variant), []).append(seconds)
        for key, count in counts.items():
            REQUESTS.labels(*key).inc(count)
        for (endpoint, variant), values in latencies.items():
            _observe_all(LATENCY.labels(endpoint, variant), values)


def _observe_all(child: Any, values: list[float]) -> None:
    """``child.observe(v)`` for each value, as one increment per bucket when the client
    library exposes its buckets (prometheus_client's ``Histogram``)."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for v in values:
            child.observe(v)
        return
    per_bucket: dict[int, int] = {}
    for v in values:
        i = bisect.bisect_left(bounds, v)  # observe() counts v in the first bound >= v
        per_bucket[i] = per_bucket.get(i, 0) + 1
    total.inc(sum(values))
    for i, count in per_bucket.items():
        buckets[i].inc(count)


def exposition() -> bytes:
    """The text exposition format (summed across replicas in multi-process mode)."""
    flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(registry))
    return bytes(generate_latest())
