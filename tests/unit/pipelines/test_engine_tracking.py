"""Steps and tracking: tracked trials are runs, runs started in a step are tagged and linked.

These use a real runtime (SQLite metadata store, local artifact store) whose settings the
engine sends to worker processes, as the service does.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

import milepost
from milepost.pipelines import _io
from milepost.pipelines._execute import TAG_RUN, TAG_STEP, record_links
from milepost.pipelines.engine import execute
from milepost.pipelines.runners import LocalRunner
from tests.unit.pipelines import _steps as S
from tests.unit.pipelines.conftest import MemoryRecorder


def test_tracked_trials_and_runs_started_in_steps(runtime: milepost.Runtime) -> None:
    ctx = runtime.context
    recorder = MemoryRecorder()
    dag = S.tracked.build({"cs": [0.5, 2.0]})
    with LocalRunner(max_workers=2) as runner:
        out = execute(
            dag,
            dag.params,
            run_id="prun1",
            runner=runner,
            recorder=recorder,
            blobs=ctx.blobs,
            settings=ctx.resolved,
        )
    assert out.status == "succeeded", out.error
    assert _io.load(ctx.blobs, out.results["best"].outputs[0]) == 4.0
    runs = list(runtime.tracking.search_runs())  # inner: the default experiment
    by_name = {r.name: r for r in runs}
    assert set(by_name) == {"trial[0]", "trial[1]", "inner"}
    for i, c in enumerate((0.5, 2.0)):
        r = by_name[f"trial[{i}]"]
        assert r.status.value == "FINISHED"
        assert r.params == {"c": str(c), "label": "x"}
        assert r.metrics == {"score": c * 2}
        assert r.tags[TAG_RUN] == "prun1"
        assert r.tags[TAG_STEP] == f"trial[{i}]"
        assert [(link.kind, link.ref) for link in out.results[f"trial[{i}]"].links] == [
            ("run", r.run_id)
        ]
    inner = by_name["inner"]
    assert inner.tags[TAG_STEP] == "starts_run"
    assert inner.params == {"c": "1.5"}
    links = out.results["starts_run"].links
    assert [(link.kind, link.ref) for link in links] == [("run", inner.run_id)]
    # the step ran in another process than this one or the trials ran in the pool
    assert _io.load(ctx.blobs, out.results["starts_run"].outputs[0]) == inner.run_id


def test_a_failing_tracked_step_fails_its_run(runtime: milepost.Runtime) -> None:
    from milepost.pipelines.dag import pipeline, step

    @step(track=True, name="tracked_boom")
    def tracked_boom(c: float) -> float:
        raise ValueError(f"bad c {c}")

    @pipeline(name="boomy")
    def boomy(c: float = 1.0) -> None:
        tracked_boom(c)

    ctx = runtime.context
    dag = boomy.build()
    with LocalRunner(max_workers=1) as runner:
        out = execute(
            dag,
            dag.params,
            run_id="prun2",
            runner=runner,
            recorder=MemoryRecorder(),
            blobs=ctx.blobs,
            settings=ctx.resolved,
        )
    assert out.error == "ValueError: bad c 1.0"
    (run,) = list(runtime.tracking.search_runs("boomy"))
    assert run.status.value == "FAILED"
    assert "bad c 1.0" in (run.error or "")
    assert run.tags[TAG_STEP] == "tracked_boom"
    assert milepost.active_run() is None  # the step's run left this thread's stack


def test_returned_records_become_links(runtime: milepost.Runtime) -> None:
    with milepost.start_run(run_name="r") as active:
        pass
    run = runtime.tracking.get_run(active.run_id)
    found: Any = record_links({"run": run, "other": [1, run]})
    assert [(link.kind, link.ref) for link in found] == [("run", run.run_id)] * 2
    assert os.getpid() > 0


class _Named:
    def __init__(self, *links: Any) -> None:
        self.links = links

    def lineage_links(self) -> tuple[Any, ...]:
        return self.links


def test_values_declare_their_links() -> None:
    found = record_links(
        [_Named(("dataset_version", "churn.train@2"), ("model_version", "churn/4", "input"))]
    )
    assert [(x.kind, x.ref, x.role) for x in found] == [
        ("dataset_version", "churn.train@2", "output"),
        ("model_version", "churn/4", "input"),
    ]
    for bad in (("table", "x"), ("run", 7), ("run", "r", "sideways"), "run"):
        with pytest.raises(TypeError, match="lineage_links"):
            record_links(_Named(bad))


def test_a_step_run_in_process_is_outside_the_callers_active_run(
    runtime: milepost.Runtime,
) -> None:
    from milepost.pipelines.dag import pipeline

    @pipeline(name="inside")
    def inside() -> None:
        S.starts_run(2.0)

    ctx = runtime.context
    dag = inside.build()
    with milepost.start_run(run_name="outer") as outer, LocalRunner() as runner:
        out = execute(
            dag,
            dag.params,
            run_id="prun3",
            runner=runner,
            recorder=MemoryRecorder(),
            blobs=ctx.blobs,
            settings=ctx.resolved,
        )
        assert milepost.active_run() is outer
    assert out.status == "succeeded", out.error
    inner = runtime.tracking.get_run(_io.load(ctx.blobs, out.results["starts_run"].outputs[0]))
    assert inner.parent_run_id is None
    assert inner.tags[TAG_RUN] == "prun3"


def test_sys_exit_in_a_step_fails_the_step(runtime: milepost.Runtime) -> None:
    from milepost.pipelines.dag import pipeline, step

    @step(name="exits")
    def exits(code: int) -> int:
        raise SystemExit(code)

    @pipeline(name="exiting")
    def exiting() -> None:
        exits(3)

    ctx = runtime.context
    dag = exiting.build()
    with LocalRunner() as runner:
        out = execute(
            dag,
            dag.params,
            run_id="prun4",
            runner=runner,
            recorder=MemoryRecorder(),
            blobs=ctx.blobs,
            settings=ctx.resolved,
        )
    assert out.status == "failed"
    assert out.error == "SystemExit: 3"
