"""The engine on the local runner with an in-memory Recorder and a local blob store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from milepost.pipelines import _io
from milepost.pipelines.dag import Pipeline, pipeline, step
from milepost.pipelines.engine import EngineOutcome, cache_key, execute
from milepost.pipelines.runners import LocalRunner
from milepost.stores.blobs import LocalBlobStore
from tests.unit.pipelines import _steps as S
from tests.unit.pipelines.conftest import MemoryRecorder


def run(
    p: Pipeline,
    recorder: MemoryRecorder,
    blobs: LocalBlobStore,
    runner: LocalRunner,
    params: dict[str, Any] | None = None,
    *,
    run_id: str = "run-1",
    **kwargs: Any,
) -> EngineOutcome:
    recorder.run_id = run_id
    dag = p.build(params or {})
    return execute(
        dag, dag.params, run_id=run_id, runner=runner, recorder=recorder, blobs=blobs, **kwargs
    )


def value(blobs: LocalBlobStore, outcome: EngineOutcome, step: str, name: str = "return") -> Any:
    ref = next(o for o in outcome.results[step].outputs if o.name == name)
    return _io.load(blobs, ref)


def test_outputs_are_stored_and_loadable(recorder, blobs, runner) -> None:
    out = run(S.simple, recorder, blobs, runner, {"rows": 4})
    assert out.status == "succeeded" and out.failed_step is None
    assert [s.step for s in recorder.plans[0]] == ["load", "total"]
    assert recorder.plans[0][1].upstream == ("load",)
    df = value(blobs, out, "load")
    pd.testing.assert_frame_equal(df, pd.DataFrame({"x": [0, 1, 2, 3], "y": [0, 1, 0, 1]}))
    assert value(blobs, out, "total") == 6
    load = out.results["load"]
    assert load.outputs[0].format == "parquet"
    assert load.outputs[0].summary == "DataFrame 4 x 2"
    assert load.attempts == 1 and load.duration_ms is not None
    assert load.inputs == {"rows": _io.value_hash(4)}
    assert out.results["total"].inputs == {"df": load.outputs[0].sha256}
    # the Recorder contract: plan, then per step lookup, started, finished
    assert recorder.events == [
        ("plan",),
        ("lookup", "load"),
        ("started", "load", "1"),
        ("finished", "load", "succeeded"),
        ("lookup", "total"),
        ("started", "total", "1"),
        ("finished", "total", "succeeded"),
    ]


def test_second_run_is_cached_and_a_changed_input_is_not(recorder, blobs, runner) -> None:
    first = run(S.simple, recorder, blobs, runner, {"rows": 4}, run_id="a")
    second = run(S.simple, recorder, blobs, runner, {"rows": 4}, run_id="b")
    assert {s: r.status for s, r in second.results.items()} == {
        "load": "cached",
        "total": "cached",
    }
    assert second.results["total"].cached_from == "a"
    assert second.results["total"].outputs == first.results["total"].outputs
    assert second.results["load"].attempts == 0
    third = run(S.simple, recorder, blobs, runner, {"rows": 5}, run_id="c")
    assert {r.status for r in third.results.values()} == {"succeeded"}
    assert value(blobs, third, "total") == 10
    off = run(S.simple, recorder, blobs, runner, {"rows": 4}, run_id="d", cache=False)
    assert {r.status for r in off.results.values()} == {"succeeded"}


def test_failure_skips_downstream_with_the_reason(recorder, blobs, runner) -> None:
    out = run(S.failing, recorder, blobs, runner, {"x": 7})
    assert out.status == "failed"
    assert out.failed_step == "boom"
    assert out.error == "ValueError: boom 7"
    boom = out.results["boom"]
    assert boom.status == "failed" and boom.outputs == ()
    assert "raise ValueError" in (boom.traceback or "")
    after = out.results["after"]
    assert after.status == "skipped"
    assert after.error == "upstream step 'boom' failed"
    assert after.attempts == 0
    # pid was ready with boom: it ran (running steps finish)
    assert out.results["pid"].status == "succeeded"


def test_tuple_outputs_are_stored_per_item(recorder, blobs, runner) -> None:
    out = run(S.tuples, recorder, blobs, runner, {"n": 4})
    split = out.results["split"]
    assert [o.name for o in split.outputs] == ["0", "1"]
    assert value(blobs, out, "split", "0") == 8
    assert value(blobs, out, "describe") == "n=4:8"
    assert out.results["describe"].inputs == {
        "doubled": split.outputs[0].sha256,
        "label": split.outputs[1].sha256,
    }


def test_fan_out_feeds_a_list_parameter(recorder, blobs, runner) -> None:
    out = run(S.fan, recorder, blobs, runner, {"rows": 4, "cs": [1.0, 3.0]})
    assert list(out.results) == ["load", "scale[0]", "scale[1]", "best"]
    assert value(blobs, out, "scale[1]") == 4.5
    assert value(blobs, out, "best") == 4.5
    assert recorder.plans[0][-1].upstream == ("scale[0]", "scale[1]")


def test_logs_are_captured(recorder, blobs, runner) -> None:
    out = run(S.simple, recorder, blobs, runner, {"rows": 3})
    key = out.results["load"].logs_key
    assert key is not None
    text = blobs.get_bytes(key).decode()
    assert "loading 3 rows" in text
    assert "WARNING tests.pipelines: loaded 3 rows" in text
    assert out.results["total"].logs_key is None


def test_recorder_calls_come_from_the_calling_thread(recorder, blobs, runner) -> None:
    import threading

    run(S.fan, recorder, blobs, runner)
    assert recorder.thread_ids == {threading.get_ident()}


@pytest.mark.parametrize("cache", [True, False])
def test_events_report_each_step(recorder, blobs, runner, cache) -> None:
    seen: list[tuple[str, str]] = []
    run(S.simple, recorder, blobs, runner, on_event=lambda s, st, info: seen.append((s, st)))
    run(
        S.simple,
        recorder,
        blobs,
        runner,
        run_id="b",
        cache=cache,
        on_event=lambda s, st, info: seen.append((s, st)),
    )
    second = ("cached", "cached") if cache else ("succeeded", "succeeded")
    assert [st for s, st in seen if st != "started"] == ["succeeded", "succeeded", *second]


class FakeClock:
    """An injected clock and sleep: sleeping advances the clock and records the delay."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_retry_with_backoff_then_success(recorder, blobs, runner, tmp_path) -> None:
    fake = FakeClock()
    events: list[tuple[str, dict[str, Any]]] = []
    out = run(
        S.retrying,
        recorder,
        blobs,
        runner,
        {"counter": str(tmp_path / "n"), "fails": 2},
        sleep=fake.sleep,
        clock=fake.clock,
        on_event=lambda s, st, info: events.append((st, info)),
    )
    assert out.status == "succeeded"
    result = out.results["flaky"]
    assert result.attempts == 3
    assert value(blobs, out, "flaky") == 3
    assert fake.sleeps == [0.5, 1.0]  # backoff * 2**(attempt-1)
    assert [e for e in recorder.events if e[0] == "started"] == [
        ("started", "flaky", "1"),
        ("started", "flaky", "2"),
        ("started", "flaky", "3"),
    ]
    retrying = [info for st, info in events if st == "retrying"]
    assert [(i["attempt"], i["delay"]) for i in retrying] == [(1, 0.5), (2, 1.0)]
    assert retrying[0]["error"] == "ConnectionError: attempt 1 failed"


def test_retries_run_out(recorder, blobs, runner, tmp_path) -> None:
    fake = FakeClock()
    out = run(
        S.retrying,
        recorder,
        blobs,
        runner,
        {"counter": str(tmp_path / "n"), "fails": 10},
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert out.status == "failed"
    assert out.results["flaky"].attempts == 4  # 1 + retries=3
    assert out.error == "ConnectionError: attempt 4 failed"
    assert fake.sleeps == [0.5, 1.0, 2.0]


def test_an_undeclared_exception_is_not_retried(recorder, blobs, runner, tmp_path) -> None:
    fake = FakeClock()
    out = run(
        S.not_transient,
        recorder,
        blobs,
        runner,
        {"counter": str(tmp_path / "n")},
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert out.status == "failed"
    assert out.results["wrong_kind"].attempts == 1
    assert out.error == "KeyError: 'not transient'"
    assert fake.sleeps == []
    assert (tmp_path / "n").read_text() == "1"


def test_a_timeout_stops_the_steps_process(recorder, blobs, runner, tmp_path) -> None:
    import psutil

    from tests._wait import wait_until

    pid_file = tmp_path / "pid"
    out = run(S.timing_out, recorder, blobs, runner, {"pid_file": str(pid_file)})
    assert out.status == "failed"
    assert out.failed_step == "hang"
    assert out.error == "TimeoutError: step 'hang' timed out after 1.0 s"
    assert out.results["after"].error == "upstream step 'hang' failed"
    pid = int(pid_file.read_text())
    assert pid != os.getpid()

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(gone, what=f"the timed-out step's process {pid} to be stopped", timeout=10)


def test_ready_steps_run_in_parallel_processes(recorder, blobs, runner, tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    out = run(S.parallel, recorder, blobs, runner, {"a": str(a), "b": str(b)})
    assert out.status == "succeeded", out.error
    pids = {value(blobs, out, "handshake"), value(blobs, out, "handshake#2")}
    assert len(pids) == 2
    assert os.getpid() not in pids


def test_a_queued_step_starts_when_a_worker_takes_it(recorder, blobs, runner) -> None:
    out = run(S.queued, recorder, blobs, runner)  # three steps, two workers
    assert out.status == "succeeded", out.error
    first, second, third = sorted(out.results.values(), key=lambda r: r.started_at or 0)
    # the third ran only once a worker was free: its time is its own, not its wait's
    assert third.started_at is not None and first.ended_at is not None
    assert third.started_at >= min(first.ended_at, second.ended_at or 0)


def test_resume_reuses_results_with_equal_keys(recorder, blobs, runner) -> None:
    first = run(S.simple, recorder, blobs, runner, {"rows": 4}, run_id="a", cache=False)
    fresh = MemoryRecorder()  # nothing to look up: only `reuse` can make a hit
    out = run(
        S.simple,
        fresh,
        blobs,
        runner,
        {"rows": 4},
        run_id="b",
        reuse=first.results,
        resumed_from="a",
        cache=False,  # a resume reuses what ran even with caching off
    )
    assert fresh.events.count(("lookup", "load")) == 0
    assert {s: (r.status, r.cached_from) for s, r in out.results.items()} == {
        "load": ("cached", "a"),
        "total": ("cached", "a"),
    }
    changed = run(
        S.simple,
        MemoryRecorder(),
        blobs,
        runner,
        {"rows": 5},
        run_id="c",
        reuse=first.results,
        resumed_from="a",
    )
    assert {r.status for r in changed.results.values()} == {"succeeded"}


def test_a_tampered_output_is_recomputed_not_loaded(recorder, blobs, runner) -> None:
    first = run(S.simple, recorder, blobs, runner, {"rows": 4}, run_id="a")
    ref = first.results["load"].outputs[0]
    path = Path(blobs.location(ref.sha256))
    path.chmod(0o644)
    path.write_bytes(b"not the stored frame")
    events: list[tuple[str, str]] = []
    out = run(
        S.simple,
        recorder,
        blobs,
        runner,
        {"rows": 4},
        run_id="b",
        on_event=lambda s, st, info: events.append((s, st)),
    )
    assert ("load", "cache_invalid") in events
    assert out.results["load"].status == "succeeded"  # recomputed
    assert out.results["load"].outputs[0].sha256 == ref.sha256  # the same bytes again
    assert value(blobs, out, "load").shape == (4, 2)  # the blob was repaired
    assert out.results["total"].status == "cached"


def test_loading_a_tampered_blob_is_refused(blobs) -> None:
    from milepost.errors import IntegrityViolation

    ref = _io.store(blobs, "return", {"a": 1})
    path = Path(blobs.location(ref.sha256))
    path.chmod(0o644)
    path.write_bytes(b"{}")
    with pytest.raises(IntegrityViolation):
        _io.load(blobs, ref)
    assert _io.verify(blobs, ref) is not None


def test_cache_key_follows_code_version_and_inputs() -> None:
    def f1(x: int) -> int:
        return x

    def f2(x: int) -> int:
        return x + 1

    def node(func: Any, version: str | None = None, x: int = 1) -> Any:
        s = step(name="same", version=version)(func)

        @pipeline
        def p() -> None:
            s(x)

        return next(iter(p.build().nodes.values()))

    def key(n: Any) -> str:
        return cache_key(n, {"x": _io.value_hash(n.args["x"].value)})

    base = key(node(f1))
    assert key(node(f1)) == base
    assert key(node(f2)) != base
    assert key(node(f1, version="2")) != base
    assert key(node(f1, x=2)) != base


def test_only_the_steps_thread_is_captured(recorder, blobs, runner, tmp_path, capsys) -> None:
    import threading

    from tests._wait import wait_until

    started, go = tmp_path / "started", tmp_path / "go"

    def other() -> None:
        wait_until(started.exists, what="the step to start")
        print("from another thread")
        go.write_text("go")

    helper = threading.Thread(target=other)
    helper.start()
    out = run(S.waiting, recorder, blobs, runner, {"started": str(started), "go": str(go)})
    helper.join()
    assert out.status == "succeeded", out.error
    logs = blobs.get_bytes(out.results["signal_and_wait"].logs_key or "").decode()
    assert logs == "from the step\n"
    assert "from another thread" in capsys.readouterr().out
    import sys

    assert type(sys.stdout).__name__ != "_Router"  # restored


def test_an_input_that_cannot_be_hashed_fails_its_step(recorder, blobs, runner) -> None:
    import threading

    @step(name="takes_lock")
    def takes_lock(lock: object) -> int:
        return 1

    @pipeline(name="locked")
    def locked() -> None:
        takes_lock(threading.Lock())

    out = run(locked, recorder, blobs, runner)
    assert out.status == "failed"
    assert out.failed_step == "takes_lock"
    assert "cannot hash an input of step 'takes_lock'" in (out.error or "")
    assert ("started", "takes_lock", "1") not in recorder.events


def test_a_worker_that_dies_fails_the_run_and_the_runner_recovers(recorder, blobs, runner) -> None:
    out = run(S.dying, recorder, blobs, runner)  # dies and pid run together in the pool
    assert out.status == "failed"
    assert out.results["dies"].status == "failed"
    assert "BrokenProcessPool" in (out.results["dies"].error or "")
    assert "a worker process died" in (out.results["dies"].error or "")
    again = run(S.fan, recorder, blobs, runner, run_id="again", cache=False)
    assert again.status == "succeeded", again.error  # a new pool replaced the broken one


def test_a_pending_retry_ends_failed_when_another_step_fails(
    recorder, blobs, runner, tmp_path
) -> None:
    fake = FakeClock()
    out = run(
        S.retry_beside_failure,
        recorder,
        blobs,
        runner,
        {"counter": str(tmp_path / "n")},
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert out.status == "failed"
    flaky = out.results["flaky"]
    assert flaky.status == "failed"
    assert flaky.attempts >= 1
    assert out.failed_step == "boom"  # flaky may be retried, it cannot fail the run first
    assert flaky.error is not None and flaky.error.startswith("ConnectionError: attempt")
    assert flaky.error.endswith("(not retried: step 'boom' failed)")
