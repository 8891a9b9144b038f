"""The engine on the local runner with an in-memory Recorder and a local blob store."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from milepost.pipelines import _io
from milepost.pipelines.dag import Pipeline
from milepost.pipelines.engine import EngineOutcome, execute
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
