"""Pipelines and triggers through ``milepost.Client``, embedded and remote: run a
pipeline the server can load, list and read runs with their steps, resume a failed
run, refuse what the server may not load, and manage and fire triggers."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

import milepost
from milepost.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from tests._wait import wait_until
from tests.shared._registry import remote_runtime

SIMPLE = "tests.unit.pipelines._steps:simple"
FAILING = "tests.unit.pipelines._steps:failing"
ROOT = Path(__file__).resolve().parents[2]


def test_run_list_and_read(client: milepost.Client, platform: dict[str, Any]) -> None:
    seen: list[tuple[str, str]] = []
    run = client.run_pipeline(
        SIMPLE,
        {"rows": 5},
        max_workers=1,
        cache=False,
        on_event=lambda s, st, _: seen.append((s, st)),
    )
    assert run.status == "succeeded" and run.actor == "alice" and run.params == {"rows": 5}
    assert [(s.step, s.status) for s in run.steps] == [
        ("load", "succeeded"),
        ("total", "succeeded"),
    ]
    assert ("total", "succeeded") in seen
    got = client.get_pipeline_run(run.run_id)
    assert got.to_dict() == platform["rt"].pipelines.get_run(run.run_id).to_dict()
    assert got.to_dict() == run.to_dict()
    assert run.run_id in [r.run_id for r in client.list_pipeline_runs("simple", limit=100)]
    assert [r.status for r in client.list_pipeline_runs("simple", status="succeeded")]
    summary = {p.name: p for p in client.list_pipelines()}["simple"]
    assert summary.ref == SIMPLE and summary.runs >= 1
    with pytest.raises(NotFound):
        client.get_pipeline_run("f" * 32)
    with pytest.raises(InvalidInput, match=r"unknown parameter|has no parameter"):
        client.run_pipeline(SIMPLE, {"nope": 1})


def test_a_failed_run_resumes_as_a_new_run(client: milepost.Client) -> None:
    failed = client.run_pipeline(FAILING, {"x": 1}, max_workers=1)
    assert failed.status == "failed" and failed.failed_step == "boom"
    again = client.resume_pipeline(failed.run_id, max_workers=1)
    assert again.resumed_from == failed.run_id and again.run_id != failed.run_id
    assert again.status == "failed"
    done = client.run_pipeline(SIMPLE, {"rows": 2}, max_workers=1)
    with pytest.raises(Conflict, match="only a failed run can be resumed"):
        client.resume_pipeline(done.run_id)


def test_what_cannot_be_loaded_is_refused(client: milepost.Client) -> None:
    with pytest.raises(InvalidInput, match=r"/tmp/flow\.py"):
        client.run_pipeline("/tmp/flow.py:flow")
    with pytest.raises(InvalidInput, match=r"(?i)cannot import module 'no_such_module_ops'"):
        client.run_pipeline("no_such_module_ops:flow")
    with pytest.raises(InvalidInput, match="not a pipeline"):
        client.run_pipeline("os.path:join")


def test_triggers(client: milepost.Client, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    t = client.add_trigger(unique, SIMPLE, params={"rows": 3}, schedule="0 3 * * *")
    assert (t.kind, t.spec, t.params) == ("schedule", {"cron": "0 3 * * *"}, {"rows": "3"})
    assert t.created_by == "alice" and t.enabled
    assert client.get_trigger(unique).to_dict() == t.to_dict()
    assert unique in [x.name for x in client.list_triggers()]
    with pytest.raises(AlreadyExists, match="exists already"):
        client.add_trigger(unique, SIMPLE, schedule="0 4 * * *")
    with pytest.raises(InvalidInput):
        client.add_trigger(f"{unique}-2", SIMPLE, schedule="0 3 * * *", on_drift="m")
    assert not client.disable_trigger(unique).enabled
    assert client.enable_trigger(unique).enabled
    assert client.list_firings(unique) == []

    # the child process that runs the pipeline must import the tests package
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    fired = client.fire_trigger(unique, reason="new labels")
    assert fired.trigger == unique and fired.status == "launched"
    assert fired.reason.endswith("new labels")
    done = wait_until(
        lambda: [f for f in client.list_firings(unique) if f.status in ("succeeded", "failed")],
        what="the fired pipeline run to end",
        timeout=60,
    )
    assert done[0].status == "succeeded" and done[0].firing_id == fired.firing_id
    assert client.get_pipeline_run(fired.run_id).trigger == fired.firing_id

    client.remove_trigger(unique, reason="test over")
    with pytest.raises(NotFound, match=f"No trigger named '{unique}'"):
        client.get_trigger(unique)


def test_the_scheduler_lease_reads_the_same_remotely(platform: dict[str, Any]) -> None:
    from milepost.pipelines.scheduler import read_lease, take_lease

    with remote_runtime(platform, platform["token"]) as remote:
        assert remote.triggers.lease() == read_lease(platform["rt"].db)
        take_lease(platform["rt"].db, "host-a:123", 30, int(time.time() * 1000))
        held = remote.triggers.lease()
        assert held is not None and held.holder == "host-a:123"
        assert held == read_lease(platform["rt"].db)
