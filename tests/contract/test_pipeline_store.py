"""The pipeline store on every metadata backend: what the recorder writes reads back
whole, a cache lookup finds only reusable outputs that still exist, ending a run settles
its unfinished steps once, and every run's start and end is audited."""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa

from milepost import Runtime
from milepost.pipelines.records import Link, OutputRef, PlannedStep, StepResult
from milepost.pipelines.store import SqlPipelineStore
from milepost.stores.schema import pipeline_runs

T0 = 1_800_000_000_000  # epoch ms

PLAN = [
    PlannedStep("load", "tests.steps:load", (), {"cache": True}),
    PlannedStep("train[0]", "tests.steps:train", ("load",), {"retries": 2}),
    PlannedStep("train[1]", "tests.steps:train", ("load",), {"retries": 2}),
    PlannedStep("pick", "tests.steps:pick", ("train[0]", "train[1]"), {}),
]


def _run_values(run_id: str, *, pipeline: str = "churn", started_at: int = T0) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "pipeline": pipeline,
        "ref": f"tests.steps:{pipeline}",
        "params_json": json.dumps({"rows": 100}),
        "status": "running",
        "runner": "local",
        "started_at": started_at,
        "heartbeat_at": started_at,
        "host": "somehost",
        "pid": 4242,
        "pid_started": 123.0,
        "code_version_json": json.dumps({"commit": "abc", "dirty": False}),
        "actor": "tester",
    }


def _new_run(store: SqlPipelineStore, **kw: Any) -> str:
    run_id = uuid.uuid4().hex
    store.create_run(_run_values(run_id, **kw), actor="tester")
    return run_id


def _output(rt: Runtime, data: bytes, name: str = "return") -> OutputRef:
    ref = rt.blobs.put_bytes(data)
    return OutputRef(name, ref.digest, ref.digest, "json", ref.size, data.decode()[:20])


def _succeeded(step: str, key: str, out: OutputRef, **kw: Any) -> StepResult:
    return StepResult(
        step,
        "succeeded",
        attempts=1,
        started_at=T0 + 10,
        ended_at=T0 + 30,
        cache_key=key,
        inputs={"rows": "h-rows"},
        outputs=(out,),
        **kw,
    )


def test_what_the_recorder_writes_reads_back_whole(runtime: Runtime) -> None:
    store = SqlPipelineStore(runtime.db)
    run_id = _new_run(store)
    store.plan(run_id, PLAN)
    planned = store.get_run(run_id)
    assert planned is not None
    assert [s.step for s in planned.steps] == ["load", "train[0]", "train[1]", "pick"]
    assert {s.status for s in planned.steps} == {"pending"}
    assert planned.steps[3].upstream == ("train[0]", "train[1]")
    assert planned.steps[1].options == {"retries": 2}

    out = _output(runtime, b"[1, 2, 3]")
    store.step_started(run_id, "load", 1, T0 + 10)
    link = Link("dataset_version", "customers@3", "input")
    store.step_finished(run_id, _succeeded("load", "k-load", out, links=(link,)))
    # two attempts: the first attempt's start is kept, the attempt count moves
    store.step_started(run_id, "train[0]", 1, T0 + 40)
    store.step_started(run_id, "train[0]", 2, T0 + 50)
    mid = store.get_run(run_id)
    assert mid is not None
    train = mid.step("train[0]")
    assert (train.status, train.attempts, train.started_at) == ("running", 2, T0 + 40)
    store.step_finished(
        run_id,
        StepResult(
            "train[0]",
            "failed",
            attempts=2,
            started_at=T0 + 40,
            ended_at=T0 + 60,
            error="ValueError: bad c",
            traceback="Traceback ...",
            links=(Link("run", "a" * 32),),
        ),
    )
    store.step_started(run_id, "train[1]", 1, T0 + 41)
    assert store.end_run(
        run_id,
        status="failed",
        ended_at=T0 + 70,
        failed_step="train[0]",
        error="ValueError: bad c",
        actor="tester",
    )
    run = store.get_run(run_id)
    assert run is not None
    assert (run.status, run.failed_step, run.ended_at) == ("failed", "train[0]", T0 + 70)
    assert run.params == {"rows": 100}
    assert run.code_version == {"commit": "abc", "dirty": False}
    load = run.step("load")
    assert load.outputs == (out,) and load.inputs == {"rows": "h-rows"}
    assert load.links == (link,) and load.duration_ms == 20
    assert run.step("train[0]").links == (Link("run", "a" * 32, "output"),)
    assert run.step("train[0]").traceback == "Traceback ..."
    # what was still running failed with the run; what never started was skipped
    assert run.step("train[1]").status == "failed"
    assert run.step("pick").status == "skipped"
    assert run.counts() == {
        "succeeded": 1,
        "cached": 0,
        "failed": 2,
        "skipped": 1,
        "running": 0,
        "pending": 0,
    }
    # the same run cannot end twice (a reaper racing the run's own end: first one wins)
    assert not store.end_run(
        run_id, status="succeeded", ended_at=T0 + 80, failed_step=None, error=None, actor="x"
    )
    assert not store.heartbeat(run_id, T0 + 90)
    events = runtime.audit.list(object_type="pipeline_run", object_id=run_id)
    assert [e.action for e in events] == ["pipeline_run.end", "pipeline_run.start"]  # newest 1st
    assert events[0].after["status"] == "failed" and events[0].before == {"status": "running"}


def test_an_unplanned_step_is_kept_after_the_planned_ones(runtime: Runtime) -> None:
    store = SqlPipelineStore(runtime.db)
    run_id = _new_run(store)
    store.plan(run_id, PLAN[:1])
    store.step_finished(run_id, StepResult("extra", "skipped", error="upstream failed"))
    run = store.get_run(run_id)
    assert run is not None and [s.step for s in run.steps] == ["load", "extra"]


def test_cache_lookup_finds_reusable_outputs_that_still_exist(runtime: Runtime) -> None:
    store = SqlPipelineStore(runtime.db)
    key = uuid.uuid4().hex
    assert store.lookup_cache(key, runtime.blobs.exists) is None

    first = _new_run(store)
    store.plan(first, PLAN[:1])
    out = _output(runtime, b'{"a": 1}')
    store.step_finished(first, _succeeded("load", key, out))
    hit = store.lookup_cache(key, runtime.blobs.exists)
    assert hit is not None
    assert (hit.status, hit.cached_from, hit.outputs) == ("cached", first, (out,))

    # a run that reused it records cached_from = the run that computed it; a lookup from
    # there still names the producer
    second = _new_run(store)
    store.plan(second, PLAN[:1])
    store.step_finished(second, hit)
    again = store.lookup_cache(key, runtime.blobs.exists)
    assert again is not None and again.cached_from == first

    # failed steps never count, and outputs missing from the artifact store do not either
    failed_key = uuid.uuid4().hex
    third = _new_run(store)
    store.plan(third, PLAN[:1])
    store.step_finished(
        third, StepResult("load", "failed", cache_key=failed_key, outputs=(out,), error="x")
    )
    assert store.lookup_cache(failed_key, runtime.blobs.exists) is None
    assert store.lookup_cache(key, lambda _key: False) is None


def test_lists_and_summaries(runtime: Runtime) -> None:
    store = SqlPipelineStore(runtime.db)
    a1 = _new_run(store, pipeline="alpha", started_at=T0)
    a2 = _new_run(store, pipeline="alpha", started_at=T0 + 1000)
    b1 = _new_run(store, pipeline="beta", started_at=T0 + 500)
    store.plan(a2, PLAN)
    store.end_run(a1, status="succeeded", ended_at=T0 + 1, failed_step=None, error=None, actor="t")
    runs = store.list_runs(pipeline=None, status=None, limit=10)
    assert [r.run_id for r in runs] == [a2, b1, a1]
    assert len(runs[0].steps) == 4 and runs[1].steps == ()
    assert [r.run_id for r in store.list_runs(pipeline="alpha", status=None, limit=10)] == [
        a2,
        a1,
    ]
    assert [r.run_id for r in store.list_runs(pipeline=None, status="succeeded", limit=10)] == [a1]
    assert len(store.list_runs(pipeline=None, status=None, limit=2)) == 2
    summaries = {s.name: s for s in store.list_pipelines()}
    assert set(summaries) == {"alpha", "beta"}
    assert (summaries["alpha"].runs, summaries["alpha"].last_run_id) == (2, a2)
    assert (summaries["alpha"].last_status, summaries["beta"].runs) == ("running", 1)
    owners = [o.run_id for o in store.running_owners()]
    assert owners == [b1, a2]


def test_links_answer_which_run_made_a_model_version(runtime: Runtime) -> None:
    store = SqlPipelineStore(runtime.db)
    run_id = _new_run(store)
    store.plan(run_id, PLAN)
    made = Link("model_version", "churn/4")
    store.step_finished(
        run_id, StepResult("pick", "succeeded", links=(made, Link("run", "b" * 32, "input")))
    )
    assert store.links_to("model_version", "churn/4") == [(run_id, "pick", made)]
    assert store.links_to("model_version", "churn/5") == []


def test_a_run_inserted_behind_the_stores_back_fails_audit_verify(runtime: Runtime) -> None:
    store = SqlPipelineStore(runtime.db)
    _new_run(store)
    assert runtime.audit.verify().ok
    with runtime.db.write() as conn:
        conn.execute(sa.insert(pipeline_runs), _run_values(uuid.uuid4().hex))
    report = runtime.audit.verify()
    assert not report.ok
    assert [p.message for p in report.problems] == [
        "2 pipeline runs exist but only 1 pipeline_run.start events are recorded: 1 was "
        "created without an event."
    ]
