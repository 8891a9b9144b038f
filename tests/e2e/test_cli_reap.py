"""`milepost runs reap`: the one place a crashed run is marked KILLED; reading never does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli import cli_in_process

CRASH = """
import os, milepost
run = milepost.start_run(experiment="crash")
milepost.log_metric("durable", 1.0)
milepost.flush()
print(run.run_id, flush=True)
os._exit(9)
"""


def test_reading_a_crashed_run_leaves_it_and_reap_marks_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert crashed.returncode == 9, crashed.stderr
    run_id = crashed.stdout.strip()

    def audit() -> list[str]:
        out = cli_in_process("audit", "list", "--object-id", run_id, "--json", cwd=tmp_path)
        return [e["action"] for e in json.loads(out.stdout)]

    before = audit()
    # reads: `runs show`, `runs list` show it RUNNING and write nothing
    assert "RUNNING" in cli_in_process("runs", "show", run_id, cwd=tmp_path).stdout
    listed = json.loads(
        cli_in_process("runs", "list", "-e", "crash", "--json", cwd=tmp_path).stdout
    )
    assert [r["status"] for r in listed["runs"]] == ["RUNNING"]
    assert audit() == before

    dry = cli_in_process("runs", "reap", "--dry-run", "--json", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    found = json.loads(dry.stdout)
    assert found["dry_run"] is True and [r["run_id"] for r in found["runs"]] == [run_id]
    assert "ended without ending the run" in found["runs"][0]["reason"]
    assert (
        "RUNNING" in cli_in_process("runs", "show", run_id, cwd=tmp_path).stdout
        and audit() == before
    )

    reaped = cli_in_process("runs", "reap", cwd=tmp_path)
    assert reaped.returncode == 0, reaped.stderr
    assert run_id in reaped.stdout and "1 run(s) marked KILLED." in reaped.stdout
    shown = json.loads(cli_in_process("runs", "show", run_id, "--json", cwd=tmp_path).stdout)
    assert shown["status"] == "KILLED" and shown["metrics"] == {"durable": 1.0}
    assert len(audit()) == len(before) + 1
    again = cli_in_process("runs", "reap", cwd=tmp_path)
    assert again.returncode == 0 and "No stale runs." in again.stdout
