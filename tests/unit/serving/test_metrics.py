"""Queued request metrics reach Prometheus with the counts and buckets of one
``observe`` per request."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from milepost.serving import metrics


def _lines(text: bytes, endpoint: str) -> dict[str, float]:
    out = {}
    for line in text.decode().splitlines():
        if line.startswith("milepost_") and f'endpoint="{endpoint}"' in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_a_batch_writes_what_one_observe_per_request_writes() -> None:
    rng = random.Random(7)
    values = [rng.choice([0.0001, 0.0005, 0.003, 0.2, 9.0]) * rng.random() for _ in range(500)]
    values += [0.0005, 0.001, 2.5, 7.0]  # on the bounds, and beyond the last one
    for v in values:
        metrics.observe("metrics-test", "v1", "ok", v)
    metrics.observe("metrics-test", "v1", "error", 0.01)
    got = _lines(metrics.exposition(), "metrics-test")

    registry = CollectorRegistry()
    reference = Histogram(
        "milepost_request_latency_seconds",
        "reference",
        ["endpoint", "variant"],
        buckets=metrics._BUCKETS,
        registry=registry,
    )
    for v in [*values, 0.01]:
        reference.labels("metrics-test", "v1").observe(v)
    want = _lines(generate_latest(registry), "metrics-test")
    latency = {k: v for k, v in got.items() if "latency" in k and "created" not in k}
    want = {k: v for k, v in want.items() if "created" not in k}
    assert latency.keys() == want.keys() and len(want) == len(metrics._BUCKETS) + 3
    for key, value in want.items():  # buckets and count exactly; the sum up to rounding
        assert abs(latency[key] - value) < 1e-9, key
    ok = 'milepost_requests_total{endpoint="metrics-test",status="ok",variant="v1"}'
    error = 'milepost_requests_total{endpoint="metrics-test",status="error",variant="v1"}'
    assert (got[ok], got[error]) == (len(values), 1)
    assert not metrics._PENDING
