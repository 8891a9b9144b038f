"""Choosing a runner, and where the local runner runs steps."""

from __future__ import annotations

import os
import sys

import pytest

from milepost.errors import ConfigError, InvalidInput
from milepost.pipelines import _io
from milepost.pipelines.engine import execute
from milepost.pipelines.runners import LocalRunner, make_runner
from tests.unit.pipelines import _steps as S


def test_unknown_runner_and_bad_options() -> None:
    with pytest.raises(InvalidInput, match=r"Unknown runner 'lcoal'\. Did you mean 'local'"):
        make_runner("lcoal")
    with pytest.raises(InvalidInput, match="local runner takes no address"):
        make_runner("local", address="tcp://127.0.0.1:8786")
    with pytest.raises(InvalidInput, match="max_workers must be an integer >= 1, got 0"):
        make_runner("local", max_workers=0)


def test_dask_not_installed_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ConfigError, match=r"pip install 'milepost\[dask\]'"):
        make_runner("dask")


def test_one_worker_runs_every_step_in_this_process(recorder, blobs, tmp_path) -> None:
    folder = tmp_path / "met"
    folder.mkdir()
    dag = S.spread.build({"folder": str(folder), "n": 3})
    for node in dag.nodes.values():  # each trial needs only itself to have started
        if node.id.startswith("meet"):
            node.args["quorum"] = type(node.args["quorum"])(1)
    with make_runner("local", max_workers=1) as runner:
        assert isinstance(runner, LocalRunner) and runner.workers == 1
        out = execute(dag, dag.params, run_id="r", runner=runner, recorder=recorder, blobs=blobs)
    assert out.status == "succeeded", out.error
    pids = {_io.load(blobs, out.results[f"meet[{i}]"].outputs[0]) for i in range(3)}
    assert pids == {os.getpid()}


def test_a_closed_runner_refuses_work(recorder, blobs) -> None:
    runner = LocalRunner()
    runner.close()
    dag = S.simple.build({"rows": 2})
    with pytest.raises(InvalidInput, match="runner is closed"):
        execute(dag, dag.params, run_id="r", runner=runner, recorder=recorder, blobs=blobs)
