"""Tracking, through the public API, on every metadata backend."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import milepost
from milepost import Client, RunStatus, Runtime
from milepost.errors import AlreadyExists, Conflict, InvalidFilter, InvalidInput, NotFound
from milepost.tracking._filter import parse_filter
from tests.conftest import optional_import


def test_run_lifecycle_and_data(runtime: Runtime) -> None:
    with milepost.start_run(experiment="exp", run_name="first", tags={"team": "a"}) as run:
        milepost.log_param("lr", 0.1)
        milepost.log_params({"model": "gbm", "depth": 3})
        for step in range(5):
            milepost.log_metric("loss", 1.0 / (step + 1), step=step)
        milepost.log_metrics({"acc": 0.9, "f1": 0.8})
        milepost.set_tags({"stage": "dev"})
    got = Client().get_run(run.run_id)
    assert got.status is RunStatus.FINISHED and got.end_time is not None
    assert got.name == "first" and got.user == "tester"
    assert got.params == {"depth": "3", "lr": "0.1", "model": "gbm"}
    assert got.metrics == {"acc": 0.9, "f1": 0.8, "loss": 0.2}
    assert got.tags == {"stage": "dev", "team": "a"}
    history = Client().get_metric_history(run.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(i, 1.0 / (i + 1)) for i in range(5)]
    env = Client().get_environment(got.env_hash or "")
    assert env.python_version and any(p.startswith("sqlalchemy==") for p in env.packages)


def test_latest_metric_is_highest_step_not_last_logged(runtime: Runtime) -> None:
    with milepost.start_run() as run:
        milepost.log_metric("m", 5.0, step=10)
        milepost.log_metric("m", 1.0, step=2)
        milepost.flush()
        milepost.log_metric("m", 3.0, step=7)
    assert Client().get_run(run.run_id).metrics["m"] == 5.0


def test_nan_and_infinity_round_trip(runtime: Runtime) -> None:
    with milepost.start_run() as run:
        milepost.log_metric("nan", float("nan"))
        milepost.log_metric("inf", float("inf"))
    metrics = Client().get_run(run.run_id).metrics
    assert math.isnan(metrics["nan"]) and metrics["inf"] == math.inf


def test_param_is_immutable_and_error_names_both_values(runtime: Runtime) -> None:
    with milepost.start_run() as run:
        milepost.log_param("lr", 0.1)
        milepost.log_param("lr", "0.1")  # the same value again is fine
        with pytest.raises(Conflict, match=r"'lr'.*'0\.1'.*'0\.2'"):
            milepost.log_param("lr", 0.2)
        # all or nothing: the batch with a conflicting key adds nothing
        with pytest.raises(Conflict):
            milepost.log_params({"new": 1, "lr": 0.3})
    assert Client().get_run(run.run_id).params == {"lr": "0.1"}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: milepost.log_metric("acc", "high"), "real number"),
        (lambda: milepost.log_metric("bad key!", 1.0), "Invalid metric name"),
        (lambda: milepost.log_metric("acc", 1.0, step=1.5), "integer"),
        (lambda: milepost.log_param("", 1), "Invalid param name"),
        (lambda: milepost.log_param("p", "x" * 7000), "limit is 6000"),
        (lambda: milepost.log_text("x", "../escape.txt"), r"'\.\.'"),
        (lambda: milepost.log_text("x", "/etc/passwd"), "absolute"),
    ],
)
def test_bad_input_is_refused_clearly(runtime: Runtime, call: object, match: str) -> None:
    with milepost.start_run(), pytest.raises(InvalidInput, match=match):
        call()  # type: ignore[operator]


def test_logging_without_a_run_says_what_to_do(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput, match="start_run"):
        milepost.log_metric("x", 1.0)


def test_exception_marks_run_failed_with_error(runtime: Runtime) -> None:
    with pytest.raises(ZeroDivisionError), milepost.start_run() as run:
        milepost.log_metric("before", 1.0)
        _ = 1 / 0
    got = Client().get_run(run.run_id)
    assert got.status is RunStatus.FAILED
    assert "ZeroDivisionError" in (got.error or "")
    assert got.metrics == {"before": 1.0}  # flushed before the status change


def test_keyboard_interrupt_marks_killed(runtime: Runtime) -> None:
    with pytest.raises(KeyboardInterrupt), milepost.start_run() as run:
        raise KeyboardInterrupt
    assert Client().get_run(run.run_id).status is RunStatus.KILLED


def test_nested_runs(runtime: Runtime) -> None:
    with milepost.start_run(experiment="nest") as parent:
        with pytest.raises(Conflict, match="nested=True"):
            milepost.start_run()
        with milepost.start_run(nested=True) as child:
            assert milepost.active_run() is child
        assert milepost.active_run() is parent
    got = Client().get_run(child.run_id)
    assert got.parent_run_id == parent.run_id and got.experiment_id == parent.experiment_id
    assert (
        Client().search_runs("nest", filter=f"parent_run_id = '{parent.run_id}'")[0].run_id
        == child.run_id
    )


def test_experiments_crud_and_audit(runtime: Runtime) -> None:
    c = Client()
    e = c.create_experiment("alpha", description="first")
    with pytest.raises(AlreadyExists):
        c.create_experiment("alpha")
    c.rename_experiment("alpha", "beta")
    assert c.get_experiment(e.experiment_id).name == "beta"
    with pytest.raises(NotFound, match="Did you mean 'beta'"):
        c.get_experiment("betta")
    c.delete_experiment("beta", reason="cleanup")
    assert [x.name for x in c.list_experiments()] == []
    with pytest.raises(AlreadyExists, match="restore"):
        c.create_experiment("beta")
    with pytest.raises(Conflict, match="deleted"):
        milepost.start_run(experiment="beta")
    c.restore_experiment("beta")
    actions = [ev.action for ev in c.list_audit_events(object_type="experiment")]
    assert actions == [
        "experiment.restore",
        "experiment.delete",
        "experiment.rename",
        "experiment.create",
    ]
    assert c.list_audit_events(action="experiment.delete")[0].reason == "cleanup"


def _seed(n: int) -> list[str]:
    ids = []
    for i in range(n):
        with milepost.start_run(experiment="search", run_name=f"r{i:02d}") as run:
            milepost.log_params({"model": ["gbm", "lr", "rf"][i % 3], "i": i})
            milepost.log_metric("acc", i / n)
            if i % 2 == 0:
                milepost.log_metric("loss", 1 - i / n)
            milepost.set_tag("parity", "even" if i % 2 == 0 else "odd")
        ids.append(run.run_id)
    return ids


def test_search_filters_orders_and_pages(runtime: Runtime) -> None:
    ids = _seed(12)
    c = Client()
    got = c.search_runs(
        "search",
        filter="metrics.acc >= 0.5 AND params.model = 'gbm'",
        order_by=["metrics.acc DESC"],
    )
    assert [r.params["i"] for r in got] == ["9", "6"]
    got = c.search_runs(
        "search",
        filter="tags.parity = 'odd' AND params.model IN ('lr', 'rf')",
        order_by="metrics.acc ASC",
    )
    assert [r.params["i"] for r in got] == ["1", "5", "7", "11"]
    got = c.search_runs("search", filter="run_name LIKE 'r1%' AND status = 'finished'")
    assert sorted(r.name for r in got) == ["r10", "r11"]
    # runs without the ordered metric come last
    got = c.search_runs("search", order_by=["metrics.loss ASC"])
    assert [r.run_id for r in got][-6:] == sorted(
        [ids[i] for i in range(1, 12, 2)], key=lambda rid: -ids.index(rid)
    )
    # pagination visits every run exactly once
    seen, token = [], None
    while True:
        page = c.search_runs(
            "search", order_by=["metrics.acc DESC"], max_results=5, page_token=token
        )
        seen += [r.run_id for r in page]
        token = page.token
        if token is None:
            break
    assert seen == list(reversed(ids))
    with pytest.raises(InvalidInput, match="different search"):
        c.search_runs(
            "search",
            max_results=5,
            page_token=c.search_runs("search", order_by=["metrics.acc DESC"], max_results=5).token,
        )


def test_filter_values_are_parameters_not_sql(runtime: Runtime) -> None:
    _seed(3)
    attack = "params.model = 'x'' OR 1=1 --'"
    assert list(Client().search_runs("search", filter=attack)) == []
    # the payload is a value like any other: stored as it is, found by itself, exactly once
    payload = "x' OR 1=1 --"
    with milepost.start_run(experiment="search", run_name="payload") as run:
        milepost.log_params({"model": payload})
    got = list(Client().search_runs("search", filter=attack))
    assert [r.run_id for r in got] == [run.run_id]
    assert got[0].params["model"] == payload


def test_bad_filter_points_at_token(runtime: Runtime) -> None:
    _seed(1)
    with pytest.raises(InvalidFilter, match="character 14 near '>'"):
        Client().search_runs("search", filter="metrics.acc >> 1")


@pytest.mark.parametrize(
    ("filter_", "match"),
    [
        (" AND ".join(["metrics.acc > 0.1"] * 1200), "1200 comparisons; at most 100"),
        (" AND ".join(f"metrics.m{i} > 0.1" for i in range(1200)), "at most 100"),
        (" AND ".join(f"params.p{i} = 'x'" for i in range(70)), "70 different metrics"),
        ("metrics.acc IN (" + ", ".join(map(str, range(20_000))) + ")", "20000 values"),
        ("params.model = 'a\x00b'", "NUL"),
        ("params.model = '\ud800'", "not valid Unicode"),
        ("params.model LIKE 'g\\\\'", "cannot end with the escape character"),
    ],
)
def test_oversized_or_impossible_filters_are_invalid_filter(
    runtime: Runtime, filter_: str, match: str
) -> None:
    _seed(1)
    with pytest.raises(InvalidFilter, match=match):
        Client().search_runs("search", filter=filter_)


def test_a_filter_the_database_cannot_run_is_invalid_filter(runtime: Runtime) -> None:
    """Past the up-front limits, a size error from the database itself is the filter's."""
    _seed(1)
    experiment = Client().get_experiment("search").experiment_id
    cases = [
        # SQLite: "LIKE or GLOB pattern too complex" (over 50,000 bytes); PostgreSQL runs it
        lambda: list(Client().search_runs("search", filter=f"params.model LIKE '{'%' * 60_000}'")),
        # straight to the store, past the parser's clause limit: SQLite's expression depth
        lambda: runtime.tracking.store.search_runs(
            [experiment], parse_filter("start_time > 5") * 1200, [], max_results=5, offset=0
        )[0],
    ]
    for case in cases:
        try:
            found = case()
        except InvalidFilter as exc:
            assert "cannot run this filter" in str(exc)
        else:
            assert runtime.db.dialect != "sqlite" and len(found) == 1


def test_the_largest_allowed_search_runs_on_every_backend(runtime: Runtime) -> None:
    ids = _seed(3)
    clauses = [f"params.p{i} != 'x'" for i in range(48)] + ["metrics.acc >= 0"] * 52
    order = ["metrics.loss DESC", "start_time"]  # 50 joined keys in all
    assert len(Client().search_runs("search", filter=" AND ".join(clauses), order_by=order)) == 0
    in_list = "metrics.acc IN (" + ", ".join(str(i / 3) for i in range(10_000)) + ")"
    got = Client().search_runs("search", filter=in_list, order_by=order)
    assert {r.run_id for r in got} == set(ids)


def test_like_escapes_wildcards_the_same_way_on_every_backend(runtime: Runtime) -> None:
    with milepost.start_run(experiment="like") as run:
        milepost.log_params({"share": "50%", "name": "a_b"})
    c = Client()
    assert [r.run_id for r in c.search_runs("like", filter="params.share LIKE '50\\\\%'")] == [
        run.run_id
    ]
    assert list(c.search_runs("like", filter="params.share LIKE '5\\\\%'")) == []
    assert len(c.search_runs("like", filter="params.name LIKE 'a\\\\_b'")) == 1
    assert list(c.search_runs("like", filter="params.name LIKE 'a\\\\_'")) == []
    assert len(c.search_runs("like", filter="params.share LIKE '5%'")) == 1


def test_artifacts_round_trip(runtime: Runtime, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.bin").write_bytes(b"\x00\x01")
    single = tmp_path / "model.pkl"
    single.write_bytes(b"weights")
    with milepost.start_run() as run:
        milepost.log_artifacts(src, "data")
        milepost.log_artifact(single)
        milepost.log_dict({"x": 1}, "cfg/params.json")
        milepost.log_text("hello", "notes.txt")
    c = Client()
    paths = [a.path for a in c.list_artifacts(run.run_id)]
    assert paths == ["cfg/params.json", "data/a.txt", "data/sub/b.bin", "model.pkl", "notes.txt"]
    assert [a.path for a in c.list_artifacts(run.run_id, "data")] == [
        "data/a.txt",
        "data/sub/b.bin",
    ]
    assert c.load_dict(run.run_id, "cfg/params.json") == {"x": 1}
    out = c.download_artifacts(run.run_id, "data", tmp_path / "dl")
    assert (out / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(NotFound):
        c.load_text(run.run_id, "missing.txt")


def test_log_figure(runtime: Runtime) -> None:
    matplotlib = optional_import("matplotlib", extra="plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    with milepost.start_run() as run:
        milepost.log_figure(fig, "plots/line.png")
    plt.close(fig)
    data = Client()._tracking.read_artifact(run.run_id, "plots/line.png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_links_out_of_a_logged_directory_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("ok")
    secret = tmp_path / "secret"
    secret.write_text("s")
    os.symlink(secret, src / "leak")
    with milepost.start_run() as run, pytest.raises(InvalidInput, match="outside"):
        milepost.log_artifacts(src)
    assert Client().list_artifacts(run.run_id) == []  # nothing half-logged


def test_deleted_runs_are_hidden_and_read_only(runtime: Runtime) -> None:
    with milepost.start_run(experiment="del") as run:
        pass
    c = Client()
    c.delete_run(run.run_id)
    assert list(c.search_runs("del")) == []
    with pytest.raises(Conflict, match="restore"):
        c.set_tag(run.run_id, "k", "v")
    c.restore_run(run.run_id)
    assert len(c.search_runs("del")) == 1


def test_ending_twice_with_another_status_is_refused(runtime: Runtime) -> None:
    c = Client()
    run = c.create_run("x")
    c.set_terminated(run.run_id, "FINISHED")
    with pytest.raises(Conflict, match="already ended as FINISHED"):
        c.set_terminated(run.run_id, "FAILED")


CRASH = textwrap.dedent(
    """
    import os, milepost
    milepost.configure(metadata_uri={uri!r}, home={home!r}, metric_flush_interval=60)
    run = milepost.start_run(experiment="crash")
    milepost.log_metric("durable", 1.0)
    milepost.flush()
    milepost.log_metric("lost", 2.0)
    print(run.run_id, flush=True)
    os._exit(9)
    """
)


def test_crashed_run_is_marked_killed_and_keeps_flushed_values(
    runtime: Runtime, tmp_path: Path
) -> None:
    code = CRASH.format(uri=runtime.db.uri, home=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 9, out.stderr
    run_id = out.stdout.strip()
    with runtime.db.read() as conn:
        status = conn.execute(
            sa.text("SELECT status FROM runs WHERE run_id = :r"), {"r": run_id}
        ).scalar()
    assert status == "RUNNING"  # nothing has looked at it yet
    c = Client()
    before = c.list_audit_events(object_id=run_id)
    # reads never write: the stale run stays RUNNING, the audit trail unchanged
    assert c.get_run(run_id).status is RunStatus.RUNNING
    assert [r.status for r in c.search_runs("crash")] == [RunStatus.RUNNING]
    assert _row(runtime, run_id) == ("RUNNING", None, None)
    assert c.list_audit_events(object_id=run_id) == before
    assert [s.run_id for s in c.reap_stale_runs(dry_run=True)] == [run_id]
    assert _row(runtime, run_id) == ("RUNNING", None, None)  # a dry run marks nothing
    assert c.list_audit_events(object_id=run_id) == before

    [reaped] = c.reap_stale_runs()
    assert reaped.run_id == run_id and "ended without ending the run" in reaped.reason
    got = c.get_run(run_id)
    assert got.status is RunStatus.KILLED
    assert "ended without ending the run" in (got.error or "")
    assert got.metrics == {"durable": 1.0}
    events = c.list_audit_events(object_id=run_id)
    assert len(events) == len(before) + 1 and events[0].reason == "stale run detected"
    assert c.reap_stale_runs() == []  # once only
    assert len(c.list_audit_events(object_id=run_id)) == len(events)


def _row(runtime: Runtime, run_id: str) -> tuple[str, int | None, str | None]:
    """The run's stored status, end time and error, read straight from the database."""
    with runtime.db.read() as conn:
        row = conn.execute(
            sa.text("SELECT status, end_time, error FROM runs WHERE run_id = :r"), {"r": run_id}
        ).one()
    return (row.status, row.end_time, row.error)


def test_remote_run_without_heartbeat_is_reaped_not_read_killed(runtime: Runtime) -> None:
    c = Client()
    run = c.create_run("remote")
    fresh = c.create_run("remote")  # another host's run that still beats
    with runtime.db.write() as conn:
        conn.execute(
            sa.text("UPDATE runs SET owner_host = 'elsewhere', heartbeat_at = 0 WHERE run_id = :r"),
            {"r": run.run_id},
        )
        conn.execute(
            sa.text(
                "UPDATE runs SET owner_host = 'elsewhere', heartbeat_at = :t WHERE run_id = :r"
            ),
            {"r": fresh.run_id, "t": int(time.time() * 1000)},
        )
    runtime.tracking._owned.clear()  # pretend this process is not the owner
    before = c.list_audit_events()
    assert {r.status for r in c.search_runs("remote")} == {RunStatus.RUNNING}
    assert c.get_run(run.run_id).status is RunStatus.RUNNING
    assert c.list_audit_events() == before
    c.create_experiment("elsewhere-not")
    assert c.reap_stale_runs("elsewhere-not") == []  # scoped to the experiments named
    assert c.get_run(run.run_id).status is RunStatus.RUNNING
    [reaped] = c.reap_stale_runs("remote")
    assert reaped.run_id == run.run_id and "no heartbeat from elsewhere" in reaped.reason
    assert c.get_run(run.run_id).status is RunStatus.KILLED
    assert c.get_run(fresh.run_id).status is RunStatus.RUNNING
    assert c.list_audit_events()[0].reason == "stale run detected"
