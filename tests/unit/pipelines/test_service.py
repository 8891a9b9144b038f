"""The pipeline service on a real metadata store: runs recorded step by step, failures
that lose nothing and resume, caching on and off, refusals before anything is written,
and stale runs reaped."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from milepost import Runtime
from milepost.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from milepost.pipelines.records import Link, StepResult
from milepost.pipelines.service import GONE
from milepost.stores.schema import pipeline_runs
from milepost.tracking.environment import process_info
from tests._wait import wait_until
from tests.unit.pipelines import records_steps

REF = "tests.unit.pipelines.records_steps:numbers"


@pytest.fixture
def rt(tmp_path: Path) -> Any:
    rt = Runtime.open(home=tmp_path / "home", user="tester")
    yield rt
    rt.close()


def _run(rt: Runtime, tmp_path: Path, **kw: Any) -> Any:
    params = {"rows": 4, "flag": str(tmp_path / "fail.flag")} | kw.pop("params", {})
    return rt.pipelines.run(REF, params, max_workers=1, **kw)


def test_a_run_records_every_step_and_its_outputs(rt: Runtime, tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    run = _run(rt, tmp_path, on_event=lambda s, status, _info: events.append((s, status)))
    assert run.status == "succeeded" and run.error is None and run.failed_step is None
    assert [s.step for s in run.steps] == ["load", "total", "check"]
    assert [s.status for s in run.steps] == ["succeeded"] * 3
    assert run.params == {"rows": 4, "flag": str(tmp_path / "fail.flag")}
    assert run.outputs("load") == [0, 1, 2, 3]
    assert run.outputs("check") == 12
    assert rt.pipelines.outputs(run.run_id, "total") == 6
    assert ("check", "succeeded") in events
    assert "loading 4 rows" in rt.pipelines.logs(run.run_id, "load")
    source = Path(records_steps.__file__).read_bytes()
    assert run.code_version["source_sha256"] == hashlib.sha256(source).hexdigest()
    assert run.ended_at is not None and run.ended_at >= run.started_at
    assert rt.pipelines.get_run(run.run_id).to_dict() == run.to_dict()
    assert [p.name for p in rt.pipelines.list_pipelines()] == ["numbers"]
    actions = [e.action for e in rt.audit.list(object_type="pipeline_run")]
    assert actions == ["pipeline_run.end", "pipeline_run.start"]
    assert rt.audit.verify().ok  # the chain and the state replay accept pipeline events
    json.dumps(run.to_dict())  # JSON-ready as it is


def test_string_params_are_parsed_by_annotation(rt: Runtime, tmp_path: Path) -> None:
    run = rt.pipelines.run(REF, {"rows": "3", "flag": str(tmp_path / "x")}, max_workers=1)
    assert run.params["rows"] == 3 and run.outputs("check") == 6


def test_a_failed_step_fails_the_run_and_resume_reuses_what_succeeded(
    rt: Runtime, tmp_path: Path
) -> None:
    flag = tmp_path / "fail.flag"
    flag.write_text("x")
    failed = _run(rt, tmp_path)
    assert failed.status == "failed" and failed.failed_step == "check"
    assert "flag file" in (failed.error or "")
    check = failed.step("check")
    assert check.status == "failed" and "RuntimeError" in (check.error or "")
    assert "Traceback" in (check.traceback or "")
    assert "checking 6" in rt.pipelines.logs(failed.run_id, "check")
    assert [s.status for s in failed.steps[:2]] == ["succeeded", "succeeded"]
    with pytest.raises(InvalidInput, match="no stored outputs"):
        failed.outputs("check")

    still = rt.pipelines.resume(failed.run_id)  # the cause is still there: fails again
    assert (still.status, still.failed_step, still.resumed_from) == (
        "failed",
        "check",
        failed.run_id,
    )
    flag.unlink()
    resumed = rt.pipelines.resume(failed.run_id)
    assert resumed.status == "succeeded" and resumed.resumed_from == failed.run_id
    assert resumed.run_id != failed.run_id and resumed.params == failed.params
    assert [s.status for s in resumed.steps] == ["cached", "cached", "succeeded"]
    assert resumed.step("load").cached_from == failed.run_id
    assert resumed.outputs("check") == 12
    with pytest.raises(Conflict, match="succeeded; only a failed run"):
        rt.pipelines.resume(resumed.run_id)
    with pytest.raises(NotFound):
        rt.pipelines.resume(uuid.uuid4().hex)
    # the failed run is kept as it was
    assert rt.pipelines.get_run(failed.run_id).status == "failed"


def test_caching_reuses_outputs_unless_turned_off(runtime: Runtime, tmp_path: Path) -> None:
    """On both backends: steps in worker processes write to the same stores."""
    rt = runtime
    first = _run(rt, tmp_path)
    again = _run(rt, tmp_path)
    assert [s.status for s in again.steps] == ["cached"] * 3
    assert {s.cached_from for s in again.steps} == {first.run_id}
    assert again.outputs("check") == 12
    fresh = _run(rt, tmp_path, cache=False)
    assert [s.status for s in fresh.steps] == ["succeeded"] * 3
    other = _run(rt, tmp_path, params={"rows": 5})  # changed input: load runs again
    assert other.step("load").status == "succeeded"
    assert [r.run_id for r in rt.pipelines.list_runs("numbers", limit=2)] == [
        other.run_id,
        fresh.run_id,
    ]


def test_bad_input_is_refused_before_anything_is_written(rt: Runtime, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="nosuch"):
        _run(rt, tmp_path, params={"nosuch": 1})
    with pytest.raises(InvalidInput):
        rt.pipelines.run("tests.unit.pipelines.no_such_module:numbers")
    with pytest.raises(InvalidInput):
        rt.pipelines.run("tests.unit.pipelines.records_steps:not_a_pipeline")
    with pytest.raises(InvalidInput, match="32 lowercase hex"):
        _run(rt, tmp_path, run_id="abc")
    with pytest.raises(InvalidInput, match="dask runner"):
        _run(rt, tmp_path, address="tcp://127.0.0.1:1")
    with pytest.raises(InvalidInput, match="Runner"):
        _run(rt, tmp_path, runner="spark")
    with pytest.raises(InvalidInput, match="Status"):
        rt.pipelines.list_runs(status="done")
    assert rt.pipelines.list_runs() == []
    assert rt.audit.list(object_type="pipeline_run") == []
    taken = _run(rt, tmp_path).run_id
    with pytest.raises(AlreadyExists):
        _run(rt, tmp_path, run_id=taken)
    with pytest.raises(NotFound):
        rt.pipelines.get_run(uuid.uuid4().hex)
    with pytest.raises(NotFound, match="Did you mean 'check'"):
        rt.pipelines.logs(taken, "chek")


def _dead_process() -> tuple[int, float]:
    import psutil

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = psutil.Process(proc.pid).create_time()
    proc.wait()
    return proc.pid, started


def _running_row(
    rt: Runtime, *, host: str, pid: int | None, pid_started: float | None, beat: int
) -> str:
    run_id = uuid.uuid4().hex
    rt.pipelines.store.create_run(
        {
            "run_id": run_id,
            "pipeline": "numbers",
            "ref": REF,
            "params_json": "{}",
            "status": "running",
            "runner": "local",
            "started_at": beat,
            "heartbeat_at": beat,
            "host": host,
            "pid": pid,
            "pid_started": pid_started,
            "actor": "tester",
        },
        actor="tester",
    )
    return run_id


def test_reap_ends_runs_whose_process_is_gone(runtime: Runtime) -> None:
    """On both backends: a dead local process, a silent other host; live ones stay."""
    me = process_info()
    now = 1_900_000_000_000
    timeout = int(runtime.settings.stale_run_timeout * 1000)
    pid, started = _dead_process()
    dead = _running_row(runtime, host=me.host, pid=pid, pid_started=started, beat=now)
    alive = _running_row(runtime, host=me.host, pid=me.pid, pid_started=me.started, beat=0)
    silent = _running_row(runtime, host="elsewhere", pid=1, pid_started=0.0, beat=now - timeout - 1)
    recent = _running_row(runtime, host="elsewhere", pid=1, pid_started=0.0, beat=now - 1000)
    # here, but no pid recorded: the heartbeat decides
    no_pid_old = _running_row(runtime, host=me.host, pid=None, pid_started=None, beat=0)
    no_pid_new = _running_row(runtime, host=me.host, pid=None, pid_started=None, beat=now)
    reaped = runtime.pipelines.reap_stale(now=now)
    assert sorted(r.run_id for r in reaped) == sorted([dead, silent, no_pid_old])
    assert runtime.pipelines.get_run(no_pid_new).status == "running"
    for r in reaped:
        assert r.status == "failed" and (r.error or "").startswith(GONE)
    assert runtime.pipelines.get_run(alive).status == "running"
    assert runtime.pipelines.get_run(recent).status == "running"
    assert runtime.pipelines.reap_stale(now=now) == []  # once only


def test_the_heartbeat_moves_while_a_step_runs(tmp_path: Path) -> None:

    rt = Runtime.open(home=tmp_path / "home", user="tester", heartbeat_interval=0.02)
    beats: list[int] = []

    def on_event(step: str, status: str, _info: dict[str, Any]) -> None:
        if step == "load" and status == "started":  # the engine waits while this waits
            (owner,) = rt.pipelines.store.running_owners()
            first = owner.heartbeat_at or 0
            beats.append(
                wait_until(
                    lambda: (
                        max(o.heartbeat_at or 0 for o in rt.pipelines.store.running_owners())
                        > first
                    ),
                    what="the run's heartbeat to move",
                    timeout=20,
                )
            )

    try:
        run = _run(rt, tmp_path, on_event=on_event)
        assert run.status == "succeeded" and beats == [True]
    finally:
        rt.close()


def test_producers_answer_which_run_made_a_lineage_node(rt: Runtime, tmp_path: Path) -> None:

    run = _run(rt, tmp_path)
    rt.pipelines.store.step_finished(
        run.run_id, StepResult("register", "succeeded", links=(Link("model_version", "churn/4"),))
    )
    assert rt.pipelines.producers("model_version", "churn/4") == [
        (run.run_id, "register", "output")
    ]
    assert rt.pipelines.get_run(run.run_id).step("register").links == (
        Link("model_version", "churn/4"),
    )


def test_the_facades_delegate(tmp_path: Path) -> None:
    import milepost

    milepost.configure(home=tmp_path / "home", user="tester")
    flag = str(tmp_path / "fail.flag")
    run = milepost.run_pipeline(records_steps.numbers, {"rows": 2, "flag": flag}, max_workers=1)
    assert run.status == "succeeded" and run.outputs("check") == 2
    client = milepost.Client()
    assert client.get_pipeline_run(run.run_id).run_id == run.run_id
    assert [r.run_id for r in client.list_pipeline_runs("numbers")] == [run.run_id]
    assert [p.last_run_id for p in client.list_pipelines()] == [run.run_id]
    again = client.run_pipeline(REF, {"rows": 2, "flag": flag}, max_workers=1)
    assert [s.status for s in again.steps] == ["cached"] * 3
    with pytest.raises(Conflict):
        client.resume_pipeline(again.run_id)


def test_a_reaped_run_resumes_from_what_it_finished(rt: Runtime, tmp_path: Path) -> None:
    """A run whose process was killed mid-step: reaped as failed, then resumed, reusing
    the steps it had finished (not only what the cache holds)."""
    done = _run(rt, tmp_path)
    pid, started = _dead_process()
    dead = _running_row(rt, host=process_info().host, pid=pid, pid_started=started, beat=0)
    with rt.db.write() as conn:  # the killed run had the same parameters
        conn.execute(
            pipeline_runs.update()
            .where(pipeline_runs.c.run_id == dead)
            .values(params_json=json.dumps(done.params))
        )
    pipe = records_steps.numbers
    rt.pipelines.store.plan(dead, pipe.build(done.params).steps)
    rt.pipelines.store.step_finished(dead, done.step("load").result())
    rt.pipelines.store.step_started(dead, "total", 1, done.started_at)
    (reaped,) = rt.pipelines.reap_stale()
    assert reaped.run_id == dead and reaped.status == "failed"
    assert [s.status for s in reaped.steps] == ["succeeded", "failed", "skipped"]
    resumed = rt.pipelines.resume(dead)
    assert resumed.status == "succeeded" and resumed.resumed_from == dead
    assert resumed.step("load").cached_from == dead  # reused from the killed run itself
    assert resumed.outputs("check") == 12


def test_a_tracked_step_is_a_run_linked_both_ways(runtime: Runtime) -> None:
    rt = runtime
    run = rt.pipelines.run("tests.unit.pipelines.records_steps:tracked", {"rows": 3})
    assert run.status == "succeeded", run.error
    (link,) = [link for link in run.step("fit").links if link.kind == "run"]
    tracked = rt.tracking.get_run(link.ref)
    assert tracked.tags["milepost.pipeline_run"] == run.run_id
    assert tracked.tags["milepost.pipeline_step"] == "fit"
    assert tracked.metrics["score"] == 0.3
    assert rt.pipelines.producers("run", link.ref) == [(run.run_id, "fit", "output")]


def test_resume_gives_back_parameters_json_could_not_keep(rt: Runtime, tmp_path: Path) -> None:
    flag = tmp_path / "fail.flag"
    flag.write_text("x")
    ref = "tests.unit.pipelines.records_steps:typed"
    failed = rt.pipelines.run(ref, {"flag": flag, "sizes": (3, 4)})
    assert failed.status == "failed"
    assert failed.params == {"flag": str(flag), "sizes": [3, 4]}  # as JSON keeps them
    flag.unlink()
    resumed = rt.pipelines.resume(failed.run_id)
    assert resumed.status == "succeeded", resumed.error
    assert resumed.outputs("gate") == 7
