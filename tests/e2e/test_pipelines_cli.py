"""`milepost pipelines ...` as a user types it: run, a failure that says how to resume,
resume, list, runs, show, logs, and the refusals."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.e2e.test_cli import cli, cli_in_process

REF = "tests.unit.pipelines.records_steps:numbers"
ROOT = Path(__file__).resolve().parents[2]


def test_run_show_list_and_logs(tmp_path: Path) -> None:
    flag = f"flag={tmp_path / 'fail.flag'}"
    out = cli_in_process(
        "pipelines", "run", REF, "--param", "rows=3", "--param", flag, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert "check succeeded" in out.stdout  # one plain line per event off a terminal
    assert "3 steps: 3 succeeded, 0 cached, 0 failed in" in out.stdout
    run_id = re.search(r"Pipeline run ([0-9a-f]{32})", out.stdout).group(1)  # type: ignore[union-attr]

    again = cli_in_process(
        "pipelines", "run", REF, "--param", "rows=3", "--param", flag, cwd=tmp_path
    )
    assert "3 steps: 0 succeeded, 3 cached, 0 failed" in again.stdout
    assert f"load cached from run {run_id[:12]}" in again.stdout

    show = cli_in_process("pipelines", "show", run_id, cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert "params: flag=" in show.stdout and "rows=3" in show.stdout
    assert "output return: json" in show.stdout and "source sha256" in show.stdout
    data = json.loads(cli_in_process("pipelines", "show", run_id, "--json", cwd=tmp_path).stdout)
    assert data["status"] == "succeeded" and [s["step"] for s in data["steps"]] == [
        "load",
        "total",
        "check",
    ]
    listed = json.loads(cli_in_process("pipelines", "list", "--json", cwd=tmp_path).stdout)
    assert [(p["name"], p["runs"]) for p in listed] == [("numbers", 2)]
    runs = cli_in_process("pipelines", "runs", "numbers", cwd=tmp_path)
    assert run_id[:12] in runs.stdout and "succeeded" in runs.stdout
    by_prefix = cli_in_process("pipelines", "show", run_id[:8], "--json", cwd=tmp_path)
    assert json.loads(by_prefix.stdout)["run_id"] == run_id
    runs_json = json.loads(
        cli_in_process("pipelines", "runs", "--status", "succeeded", "--json", cwd=tmp_path).stdout
    )
    assert len(runs_json) == 2
    logs = cli_in_process("pipelines", "logs", run_id, "load", cwd=tmp_path)
    assert "loading 3 rows" in logs.stdout


def test_refusals_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    bad = cli_in_process("pipelines", "run", REF, "--param", "rows", cwd=tmp_path)
    assert bad.returncode == 1 and "is not NAME=VALUE" in bad.stderr
    unknown = cli_in_process("pipelines", "run", REF, "--param", "nosuch=1", cwd=tmp_path)
    assert unknown.returncode == 1 and "nosuch" in unknown.stderr
    missing = cli_in_process("pipelines", "show", "0" * 32, cwd=tmp_path)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    empty = cli_in_process("pipelines", "runs", cwd=tmp_path)
    assert "No pipeline runs." in empty.stdout


def test_a_failed_run_exits_1_says_why_and_resumes_in_a_real_process(tmp_path: Path) -> None:
    flag = tmp_path / "fail.flag"
    flag.write_text("present")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    failed = cli("pipelines", "run", REF, "--param", f"flag={flag}", cwd=tmp_path, env=env)
    assert failed.returncode == 1, failed.stderr + failed.stdout
    assert "Step check failed: RuntimeError: flag file" in failed.stdout
    assert "checking 10" in failed.stdout  # the step's last log lines
    assert "load succeeded" in failed.stdout and "check failed" in failed.stdout
    command = re.search(r"milepost pipelines resume ([0-9a-f]{32})", failed.stdout)
    assert command is not None, failed.stdout

    flag.unlink()
    resumed = cli("pipelines", "resume", command.group(1), cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert "3 steps: 1 succeeded, 2 cached, 0 failed" in resumed.stdout
    shown = json.loads(
        cli_in_process("pipelines", "runs", "--status", "succeeded", "--json", cwd=tmp_path).stdout
    )
    assert shown[0]["resumed_from"] == command.group(1)


def test_the_live_table_shows_status_attempts_and_cache() -> None:
    from rich.console import Console

    from milepost.cli._pipeline_view import StepView

    now = [100.0]
    view = StepView(live=False, clock=lambda: now[0])
    view.live_table = True  # render the table, print no lines
    view("load", "cached", {"cached_from": "f" * 32})
    view("train", "started", {"attempt": 1})
    view("train", "retrying", {"attempt": 1, "delay": 0.5, "error": "ConnectionError: x"})
    view("train", "started", {"attempt": 2})
    now[0] = 102.5
    screen = Console(record=True, width=100)
    screen.print(view.table())
    text = screen.export_text()
    assert "cached from ffffffffffff" in text
    assert "train" in text and "running" in text and "2.5 s" in text
    view("train", "succeeded", {"attempts": 2, "duration_ms": 3100})
    screen.print(view.table())
    text = screen.export_text()
    assert "succeeded" in text and "3.1 s" in text


def test_the_same_pipeline_runs_on_dask(tmp_path: Path) -> None:
    """A LocalCluster on 127.0.0.1 the runner starts and stops; the run says dask."""
    flag = f"flag={tmp_path / 'fail.flag'}"
    out = cli_in_process(
        "pipelines",
        "run",
        REF,
        "--param",
        flag,
        "--runner",
        "dask",
        "--workers",
        "1",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert "3 steps: 3 succeeded, 0 cached, 0 failed" in out.stdout
    (run,) = json.loads(cli_in_process("pipelines", "runs", "--json", cwd=tmp_path).stdout)
    assert run["runner"] == "dask" and run["status"] == "succeeded"
    # the local runner then reuses what the Dask workers stored
    again = cli_in_process("pipelines", "run", REF, "--param", flag, cwd=tmp_path)
    assert "3 steps: 0 succeeded, 3 cached, 0 failed" in again.stdout


def test_show_names_the_tracking_run_a_step_made(tmp_path: Path) -> None:
    ref = "tests.unit.pipelines.records_steps:tracked"
    out = cli_in_process("pipelines", "run", ref, cwd=tmp_path)
    assert out.returncode == 0, out.stderr + out.stdout
    run_id = re.search(r"Pipeline run ([0-9a-f]{32})", out.stdout).group(1)  # type: ignore[union-attr]
    shown = cli_in_process("pipelines", "show", run_id, cwd=tmp_path).stdout
    assert "fit succeeded" in shown and "· tracked" in shown
    made = re.search(r"made run ([0-9a-f]{32})", shown)
    assert made is not None, shown
    runs = cli_in_process("runs", "show", made.group(1), "--json", cwd=tmp_path)
    assert json.loads(runs.stdout)["tags"]["milepost.pipeline_run"] == run_id
