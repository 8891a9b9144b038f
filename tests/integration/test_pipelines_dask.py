"""The engine on a real Dask LocalCluster (2 worker processes on 127.0.0.1).

The same pipeline gives the same outputs and records as on the local runner, a fan-out
spreads over both workers, a failing step fails the run cleanly, and the runner leaves
no process behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from milepost.pipelines import _io
from milepost.pipelines.dag import Pipeline
from milepost.pipelines.engine import EngineOutcome, execute
from milepost.pipelines.runners import DaskRunner, LocalRunner, Runner, make_runner
from milepost.stores.blobs import LocalBlobStore
from tests._wait import wait_until
from tests.conftest import optional_import
from tests.unit.pipelines import _steps as S
from tests.unit.pipelines.conftest import MemoryRecorder

optional_import("distributed", extra="dask")


@pytest.fixture(scope="module")
def dask_runner() -> Iterator[DaskRunner]:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    runner = make_runner("dask", max_workers=2)
    assert isinstance(runner, DaskRunner)
    yield runner
    runner.close()

    def leftovers() -> list[str]:
        found = []
        for p in psutil.Process().children(recursive=True):
            try:
                if p.pid in before or p.status() == psutil.STATUS_ZOMBIE:
                    continue
                cmd = " ".join(p.cmdline())
            except psutil.NoSuchProcess:
                continue
            # multiprocessing's forkserver and resource tracker (the local runner's) stay
            if "forkserver" not in cmd and "resource_tracker" not in cmd:
                found.append(f"{p.pid} {cmd[:200]}")
        return found

    wait_until(lambda: not leftovers(), what="the cluster's processes to exit", detail=leftovers)


def run(
    p: Pipeline, runner: Runner, blobs: LocalBlobStore, params: dict[str, Any]
) -> tuple[EngineOutcome, MemoryRecorder]:
    recorder = MemoryRecorder()
    dag = p.build(params)
    out = execute(
        dag, dag.params, run_id="r", runner=runner, recorder=recorder, blobs=blobs, cache=False
    )
    return out, recorder


def test_same_outputs_and_records_as_local(dask_runner: DaskRunner, tmp_path: Path) -> None:
    params = {"rows": 6, "cs": [0.5, 1.0, 2.0]}
    with LocalRunner(max_workers=2) as local:
        want, want_rec = run(S.fan, local, LocalBlobStore(tmp_path / "a"), params)
    got, got_rec = run(S.fan, dask_runner, LocalBlobStore(tmp_path / "b"), params)
    assert got.status == want.status == "succeeded"

    def summary(out: EngineOutcome) -> dict[str, Any]:
        return {
            s: (r.status, r.cache_key, r.inputs, [o.to_dict() for o in r.outputs])
            for s, r in out.results.items()
        }

    assert summary(got) == summary(want)
    assert got_rec.plans == want_rec.plans
    assert sorted(got_rec.events) == sorted(want_rec.events)  # parallel steps end in any order


def test_fan_out_uses_both_workers(dask_runner: DaskRunner, tmp_path: Path) -> None:
    folder = tmp_path / "met"
    folder.mkdir()
    blobs = LocalBlobStore(tmp_path / "blobs")
    out, _ = run(S.spread, dask_runner, blobs, {"folder": str(folder), "n": 4})
    assert out.status == "succeeded", out.error
    assert _io.load(blobs, out.results["count"].outputs[0]) == 2  # two worker processes
    workers = set(dask_runner.client.run(os.getpid).values())
    pids = {_io.load(blobs, out.results[f"meet[{i}]"].outputs[0]) for i in range(4)}
    assert pids == workers
    assert dask_runner.workers == 2


def test_a_failing_step_fails_the_run_cleanly(dask_runner: DaskRunner, tmp_path: Path) -> None:
    out, rec = run(S.failing, dask_runner, LocalBlobStore(tmp_path / "blobs"), {"x": 3})
    assert out.status == "failed"
    assert out.failed_step == "boom"
    assert out.error == "ValueError: boom 3"
    assert out.results["after"].status == "skipped"
    assert out.results["after"].error == "upstream step 'boom' failed"
    assert out.results["pid"].status == "succeeded"
    finished = [e[1] for e in rec.events if e[0] == "finished"]
    assert sorted(finished[:2]) == ["boom", "pid"]
    assert finished[2:] == ["after"]  # skips are recorded once running steps ended


def test_a_timeout_on_dask_fails_the_step(dask_runner: DaskRunner, tmp_path: Path) -> None:
    out, _ = run(
        S.timing_out, dask_runner, LocalBlobStore(tmp_path / "b"), {"pid_file": str(tmp_path / "p")}
    )
    assert out.error == "TimeoutError: step 'hang' timed out after 1.0 s"
    assert out.results["after"].status == "skipped"
    # Dask cannot stop the call: it goes on in its worker until the step returns
    assert not (tmp_path / "p.done").exists()
    (tmp_path / "p.never").write_text("stop waiting")
    wait_until((tmp_path / "p.done").exists, what="the timed-out call to end in its worker")


def test_unknown_runner_names() -> None:
    from milepost.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"Unknown runner 'dsak'\. Did you mean 'dask'"):
        make_runner("dsak")
    with pytest.raises(InvalidInput, match="local runner takes no address"):
        make_runner("local", address="tcp://127.0.0.1:1")


def test_steps_on_dask_write_to_the_runs_stores(dask_runner: DaskRunner, runtime: Any) -> None:
    """Workers open the run's metadata and artifact stores from the settings sent along:
    tracked trials become runs there, tagged with the pipeline run and step."""
    ctx = runtime.context
    dag = S.tracked.build({"cs": [1.0, 3.0]})
    out = execute(
        dag,
        dag.params,
        run_id="dask-run",
        runner=dask_runner,
        recorder=MemoryRecorder(),
        blobs=ctx.blobs,
        settings=ctx.resolved,
    )
    assert out.status == "succeeded", out.error
    assert _io.load(ctx.blobs, out.results["best"].outputs[0]) == 6.0
    runs = {r.name: r for r in runtime.tracking.search_runs()}
    assert set(runs) == {"trial[0]", "trial[1]", "inner"}
    assert runs["trial[1]"].metrics == {"score": 6.0}
    assert {r.tags["milepost.pipeline_run"] for r in runs.values()} == {"dask-run"}
