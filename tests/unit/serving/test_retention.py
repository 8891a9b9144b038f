"""Retention: whole prediction-log segments past their time are deleted, with the feedback
of their requests, audited; decision records follow their own retention (SQLite and
PostgreSQL, an injected clock)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import milepost
from milepost import Client, Runtime
from milepost.errors import NotFound
from milepost.serving.logger import LOG_SCHEMA, PredictionLogger, new_request_id

DAY = 86_400_000
NOW = 1_800_000_000_000  # the injected "now" (2027)
EXPLANATION = {
    "base_value": 0.1,
    "output": 0.6,
    "output_space": "log-odds",
    "contributions": {"income": 0.5},
    "other": 0.0,
}


@pytest.fixture
def rt(metadata_uri: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = milepost.configure(
        home=tmp_path / "home",
        metadata_uri=metadata_uri,
        user="tester",
        prediction_log_retention_days=30,
        decision_retention_days=365,
    )
    yield runtime
    milepost.reset()


def _segment(rt: Runtime, endpoint: str, at: int, *, decision: bool = False) -> tuple[str, str]:
    """One segment of one logged request made at ``at``: (its path, the request id)."""
    request_id = new_request_id(at)
    logger = PredictionLogger(
        endpoint, rt.settings.home / "predictions", rt.serving.store, interval=3600
    )
    before = set(rt.serving.store.segments(endpoint))
    logger.append(
        {
            "request_id": request_id,
            "row": 0,
            "ts": at,
            "endpoint": endpoint,
            "variant": f"{endpoint}-v1",
            "model": endpoint,
            "version": 1,
            "role": "primary",
            "key": request_id,
            "features": '{"income": 52000}',
            "prediction": "1",
            "latency_ms": 1.0,
            "status": "ok",
            "explanation": orjson.dumps(EXPLANATION).decode() if decision else None,
        }
    )
    logger.close()
    (path,) = set(rt.serving.store.segments(endpoint)) - before
    return path, request_id


def _old_schema_segment(rt: Runtime, endpoint: str, at: int) -> tuple[str, str]:
    """A segment written before the ``explanation`` column existed."""
    request_id = new_request_id(at)
    schema = pa.schema([f for f in LOG_SCHEMA if f.name != "explanation"])
    row: dict[str, Any] = {f.name: None for f in schema}
    row.update(
        request_id=request_id,
        row=0,
        ts=at,
        endpoint=endpoint,
        variant=f"{endpoint}-v1",
        model=endpoint,
        version=1,
        role="primary",
        features="{}",
        prediction="0",
        status="ok",
    )
    table = pa.Table.from_pylist([row], schema=schema)
    path = rt.settings.home / "old.parquet"
    pq.write_table(table, path)
    rt.serving.store.add_segments(
        [{"endpoint": endpoint, "path": str(path), "rows": 1, "first_at": at, "last_at": at}]
    )
    return str(path), request_id


def test_prune_deletes_exactly_the_segments_past_their_retention(rt: Runtime) -> None:
    store = rt.serving.store
    old_log, old_id = _segment(rt, "plain", NOW - 40 * DAY)
    new_log, new_id = _segment(rt, "plain", NOW - 10 * DAY)
    old_schema, old_schema_id = _old_schema_segment(rt, "plain", NOW - 31 * DAY)
    kept_decision, kept_id = _segment(rt, "credit", NOW - 40 * DAY, decision=True)
    old_decision, _ = _segment(rt, "credit", NOW - 400 * DAY, decision=True)
    store.add_feedback("plain", old_id, [1])
    store.add_feedback("plain", new_id, [0])

    # an old segment without the column still reads: as a prediction without a record
    with pytest.raises(NotFound, match="keeps no decision records"):
        rt.serving.decision(old_schema_id)
    assert rt.serving.decision(kept_id).explanation == EXPLANATION

    client = Client()
    dry = client.prune_prediction_logs(now=NOW, dry_run=True)
    assert (dry.dry_run, dry.segments, dry.rows, dry.decision_segments, dry.feedback) == (
        True,
        3,
        3,
        1,
        1,
    )
    assert dry.endpoints == {"plain": 2, "credit": 1}
    assert all(Path(p).exists() for p in (old_log, old_schema, old_decision))
    assert len(store.segments("plain")) == 3

    report = rt.serving.prune_prediction_logs(now=NOW)
    assert (report.segments, report.rows, report.decision_segments, report.feedback) == (3, 3, 1, 1)
    assert report.before_ms == {"prediction_log": NOW - 30 * DAY, "decisions": NOW - 365 * DAY}
    assert sorted(store.segments("plain")) == [new_log]
    assert store.segments("credit") == [kept_decision]
    assert not any(Path(p).exists() for p in (old_log, old_schema, old_decision))
    assert Path(new_log).exists() and Path(kept_decision).exists()
    assert store.feedback(old_id) == {} and store.feedback(new_id) == {0: 0}
    assert rt.serving.decision(kept_id).prediction == 1

    events = client.list_audit_events(action="predictions.prune")
    assert {e.object_id: (e.after["segments"], e.after["feedback"]) for e in events} == {
        "plain": (2, 1),
        "credit": (1, 0),
    }
    assert client.verify_audit().ok

    again = rt.serving.prune_prediction_logs(now=NOW)
    assert again.segments == 0 and again.feedback == 0
    assert len(client.list_audit_events(action="predictions.prune")) == 2


def test_without_retention_settings_nothing_is_pruned(tmp_path: Path) -> None:
    rt = milepost.configure(home=tmp_path / "home", user="tester")
    path, _ = _segment(rt, "plain", NOW - 4000 * DAY)
    report = rt.serving.prune_prediction_logs(now=NOW)
    assert report.segments == 0 and report.before_ms == {"prediction_log": None, "decisions": None}
    assert Path(path).exists()


def test_the_scheduler_prunes_on_its_periodic_work(rt: Runtime) -> None:
    old, _ = _segment(rt, "plain", NOW - 40 * DAY)
    scheduler = rt.scheduler(launch="inline")
    report = scheduler.tick(now=NOW)
    assert report.work["prediction logs"] == [
        "pruned 1 prediction-log segment(s) (1 rows, 0 with decision records, 0 label(s))"
    ]
    assert not Path(old).exists()
    _segment(rt, "plain", NOW - 40 * DAY)
    # hourly at most: the next tick a minute later leaves it for the next hour
    assert scheduler.tick(now=NOW + 60_000).work.get("prediction logs", []) == []
    assert len(rt.serving.store.segments("plain")) == 1
    later = scheduler.tick(now=NOW + 3_600_000).work["prediction logs"]
    assert later and rt.serving.store.segments("plain") == []
