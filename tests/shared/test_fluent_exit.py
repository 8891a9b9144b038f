"""A script in remote mode that exits without flushing: its metrics are still sent, and
a run it left open is ended FINISHED, as embedded mode does at interpreter exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import milepost
from milepost.tracking import RunStatus

SCRIPT = textwrap.dedent(
    """
    import milepost

    run = milepost.start_run(experiment="exit-remote")
    for step in range(5000):
        milepost.log_metric("loss", step / 5000, step=step)
    other = milepost.Client().create_run("exit-remote")
    milepost.Client().log_metric(other.run_id, "acc", 0.75)
    print(run.run_id, other.run_id)
    # no flush, no end_run: interpreter exit sends what is queued
    """
)


def _run_remote(
    script: str, platform: dict[str, Any], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a new interpreter in remote mode against the shared server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env |= {
        "MILEPOST_URL": platform["url"],
        "MILEPOST_TOKEN": platform["token"],
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_exit_drains_the_queue_and_ends_the_open_run(
    platform: dict[str, Any], tmp_path: Path
) -> None:
    done = _run_remote(SCRIPT, platform, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "lost" not in done.stderr
    run_id, other_id = done.stdout.split()
    client = milepost.Client(platform["rt"])
    run = client.get_run(run_id)
    assert run.status is RunStatus.FINISHED
    assert len(client.get_metric_history(run_id, "loss")) == 5000
    assert client.get_run(other_id).metrics == {"acc": 0.75}
    assert not (tmp_path / ".milepost").exists()  # remote mode opened no local store


FORK_SCRIPT = textwrap.dedent(
    """
    import os
    import milepost

    client = milepost.Client()
    run = client.create_run("fork-remote")
    client.log_metric(run.run_id, "parent", 1.0)
    client.flush()  # the parent's pooled connection is open now
    pid = os.fork()
    if pid == 0:  # the child: its own queue and its own connections
        child = milepost.Client()
        child.log_metric(run.run_id, "child", 2.0)
        child.flush()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    client.log_metric(run.run_id, "parent", 3.0, step=1)
    client.set_terminated(run.run_id)
    print(run.run_id, status)
    """
)


def test_a_forked_child_logs_on_its_own_connections(
    platform: dict[str, Any], tmp_path: Path
) -> None:
    done = _run_remote(FORK_SCRIPT, platform, tmp_path)
    assert done.returncode == 0, done.stderr
    run_id, status = done.stdout.split()
    assert status == "0"
    client = milepost.Client(platform["rt"])
    assert client.get_run(run_id).metrics == {"child": 2.0, "parent": 3.0}
    assert [m.value for m in client.get_metric_history(run_id, "parent")] == [1.0, 3.0]
