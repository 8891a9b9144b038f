"""Tracking through ``milepost.Client``: the same calls and results embedded and remote."""

from __future__ import annotations

import math
from typing import Any

import pytest

import milepost
from milepost.errors import AlreadyExists, Conflict, InvalidFilter, InvalidInput, NotFound
from milepost.tracking import Experiment, Run, RunStatus


def test_experiments_crud(client: milepost.Client, unique: str) -> None:
    created = client.create_experiment(unique, description="shared suite")
    assert isinstance(created, Experiment)
    assert (created.name, created.description, created.lifecycle_stage) == (
        unique,
        "shared suite",
        "active",
    )
    assert client.get_experiment(unique) == created
    assert client.get_experiment(created.experiment_id) == created
    assert created in client.list_experiments()

    renamed = client.rename_experiment(created.experiment_id, f"{unique}-b")
    assert renamed.name == f"{unique}-b"
    assert renamed.experiment_id == created.experiment_id

    deleted = client.delete_experiment(f"{unique}-b", reason="done")
    assert deleted.lifecycle_stage == "deleted"
    assert deleted not in client.list_experiments()
    assert deleted in client.list_experiments(include_deleted=True)
    assert client.restore_experiment(f"{unique}-b").lifecycle_stage == "active"


def test_experiment_errors_come_back_as_the_same_classes(
    client: milepost.Client, unique: str
) -> None:
    client.create_experiment(unique)
    with pytest.raises(AlreadyExists, match=unique):
        client.create_experiment(unique)
    with pytest.raises(NotFound, match="does not exist"):
        client.get_experiment(f"{unique}-missing")
    with pytest.raises(NotFound):
        client.get_experiment(987_654_321)
    with pytest.raises(InvalidInput, match="Experiment name"):
        client.create_experiment(" padded ")
    with pytest.raises(InvalidInput):
        client.get_experiment(3.5)  # type: ignore[arg-type]


def test_run_lifecycle(client: milepost.Client, unique: str, mode: str) -> None:
    run = client.create_run(unique, run_name="first", tags={"team": "ml", "n": 3})
    assert isinstance(run, Run)
    assert (run.name, run.status, run.tags) == (
        "first",
        RunStatus.RUNNING,
        {"n": "3", "team": "ml"},
    )
    assert run.experiment_id == client.get_experiment(unique).experiment_id
    assert run.env_hash is not None
    assert client.get_environment(run.env_hash).env_hash == run.env_hash

    client.log_param(run.run_id, "lr", 0.1)
    client.log_batch(run.run_id, params={"depth": 4}, tags={"stage": "dev"}, metrics={"loss": 0.5})
    client.set_tag(run.run_id, "note", "hello")
    client.delete_tag(run.run_id, "team")
    ended = client.set_terminated(run.run_id, "FINISHED")
    assert ended.status is RunStatus.FINISHED
    assert ended.end_time is not None and ended.end_time >= ended.start_time
    assert ended.params == {"depth": "4", "lr": "0.1"}
    assert ended.tags == {"n": "3", "note": "hello", "stage": "dev"}
    assert ended.metrics == {"loss": 0.5}
    assert client.get_run(run.run_id) == ended

    client.delete_run(run.run_id)
    assert client.search_runs(unique) == []
    client.restore_run(run.run_id)
    assert [r.run_id for r in client.search_runs(unique)] == [run.run_id]


def test_run_author_is_the_callers_identity(client: milepost.Client, unique: str) -> None:
    # Embedded, the process's user; remote, the token's user: both "alice" here.
    run = client.create_run(unique)
    assert run.user == "alice"
    assert client.get_run(run.run_id).user == "alice"
    client.set_terminated(run.run_id)


def test_run_errors(client: milepost.Client, unique: str) -> None:
    run = client.create_run(unique)
    client.log_param(run.run_id, "lr", 0.1)
    with pytest.raises(Conflict, match="immutable"):
        client.log_param(run.run_id, "lr", 0.2)
    with pytest.raises(InvalidInput, match="param name"):
        client.log_param(run.run_id, "bad//name", 1)
    with pytest.raises(NotFound):
        client.get_run("0" * 32)
    with pytest.raises(NotFound):
        client.log_metric("0" * 32, "loss", 1.0)
    with pytest.raises(InvalidInput, match="real number"):
        client.log_metric(run.run_id, "loss", "high")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        client.get_run(42)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="Parent run"):
        client.create_run(unique, parent_run_id="f" * 32)
    with pytest.raises(InvalidInput, match="Unknown run status"):
        client.set_terminated(run.run_id, "SLEEPING")
    with pytest.raises(NotFound):
        client.delete_tag(run.run_id, "never-set")
    client.set_terminated(run.run_id)


def test_metrics_with_steps_and_history(client: milepost.Client, unique: str) -> None:
    run = client.create_run(unique)
    for step in range(5):
        client.log_metric(
            run.run_id, "val/loss", 1.0 / (step + 1), step=step, timestamp=1000 + step
        )
    client.log_metric(run.run_id, "odd", math.nan, step=0)
    client.log_metric(run.run_id, "odd", math.inf, step=1)
    client.flush()
    history = client.get_metric_history(run.run_id, "val/loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [
        (s, 1.0 / (s + 1), 1000 + s) for s in range(5)
    ]
    odd = client.get_metric_history(run.run_id, "odd")
    assert math.isnan(odd[0].value) and odd[1].value == math.inf
    got = client.get_run(run.run_id)
    assert got.metrics["val/loss"] == pytest.approx(0.2)
    client.set_terminated(run.run_id)


def test_batched_metrics_are_durable_after_flush(
    client: milepost.Client, platform: dict[str, Any], unique: str
) -> None:
    run = client.create_run(unique)
    for step in range(3000):
        client.log_metric(run.run_id, "loss", float(step), step=step)
    client.flush()
    # read straight from the store the server writes to
    stored = platform["rt"].tracking.store.metric_history(run.run_id, "loss")
    assert len(stored) == 3000
    assert stored[-1].value == 2999.0
    client.set_terminated(run.run_id)


def test_search_runs_filter_order_and_paging(client: milepost.Client, unique: str) -> None:
    ids = []
    for i in range(7):
        run = client.create_run(unique, run_name=f"r{i}")
        client.log_batch(
            run.run_id, params={"model": "gbm" if i % 2 else "lin"}, metrics={"acc": i / 10}
        )
        client.set_terminated(run.run_id)
        ids.append(run.run_id)

    best = client.search_runs(unique, order_by=["metrics.acc DESC"], max_results=3)
    assert [r.name for r in best] == ["r6", "r5", "r4"]
    assert best.token is not None
    rest = client.search_runs(
        unique, order_by=["metrics.acc DESC"], max_results=3, page_token=best.token
    )
    assert [r.name for r in rest] == ["r3", "r2", "r1"]
    last = client.search_runs(
        unique, order_by=["metrics.acc DESC"], max_results=3, page_token=rest.token
    )
    assert [r.name for r in last] == ["r0"] and last.token is None

    gbm = client.search_runs([unique], filter="params.model = 'gbm' AND metrics.acc > 0.2")
    assert sorted(r.name for r in gbm) == ["r3", "r5"]
    by_id = client.search_runs(client.get_experiment(unique).experiment_id, max_results=50)
    assert sorted(r.run_id for r in by_id) == sorted(ids)
    with pytest.raises(InvalidFilter):
        client.search_runs(unique, filter="metrics.acc >>> 1")
    with pytest.raises(InvalidInput):
        client.search_runs(unique, max_results=0)


def test_nested_runs_and_parent(client: milepost.Client, unique: str) -> None:
    parent = client.create_run(unique)
    child = client.create_run(unique, parent_run_id=parent.run_id)
    assert child.parent_run_id == parent.run_id
    client.set_terminated(child.run_id, RunStatus.KILLED)
    client.set_terminated(parent.run_id)
    assert client.get_run(child.run_id).status is RunStatus.KILLED


def test_reap_stale_runs_dry_run(client: milepost.Client, unique: str) -> None:
    run = client.create_run(unique)
    # the run's owner (this process) is alive: nothing is stale
    assert client.reap_stale_runs(unique, dry_run=True) == []
    client.set_terminated(run.run_id)


def test_remote_mode_goes_over_http(runtime: Any, mode: str) -> None:
    from milepost.client import RemoteRuntime
    from milepost.client.tracking import RemoteTracking

    if mode == "remote":
        assert isinstance(runtime, RemoteRuntime)
        assert isinstance(runtime.tracking, RemoteTracking)
        assert runtime.whoami()["user"] == "alice"
    else:
        assert isinstance(runtime, milepost.Runtime)


@pytest.mark.parametrize("name", ["a/b", "..", "x?y#z", "sp ace", "名前"])
def test_odd_experiment_names(client: milepost.Client, unique: str, name: str) -> None:
    full = f"{unique}{name}" if name != ".." else name
    try:
        created = client.create_experiment(full)
    except AlreadyExists:  # ".." is shared by both modes' runs of this test
        created = client.get_experiment(full)
    assert client.get_experiment(full) == created
    assert client.delete_experiment(full).lifecycle_stage == "deleted"
    assert client.restore_experiment(full).lifecycle_stage == "active"
    with pytest.raises(NotFound):
        client.get_experiment(f"{full}/missing")
