"""Who owns a remote run: the client's process, recorded as embedded mode records its own.

The server starts a remote client's run with the client's environment, git state, host
and pid; the client sends its heartbeats; the server's reaper marks it KILLED once that
process is gone (same host) or silent for ``stale_run_timeout`` (another host), never
while it lives, and never because the server itself is alive."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

import milepost
from milepost.client import RemoteRuntime
from milepost.config import load_settings
from milepost.tracking import RunStatus
from milepost.tracking.backends.sql import now_ms
from milepost.tracking.environment import capture_environment, process_info
from tests._wait import wait_until


def _origin(**changes: Any) -> dict[str, Any]:
    env = capture_environment()
    me = process_info()
    origin = {
        "python_version": env.python_version,
        "platform": env.platform,
        "packages": ["only-this==1.0"],
        "source": "train.py",
        "host": me.host,
        "pid": me.pid,
        "started": me.started,
        "git_root": "/src/repo",
        "git_commit": "c" * 40,
        "git_dirty": True,
    }
    return origin | changes


def test_a_remote_run_records_the_clients_origin(platform: dict[str, Any], unique: str) -> None:
    headers = {"Authorization": f"Bearer {platform['token']}"}
    with httpx.Client(base_url=f"{platform['url']}/api/v1", headers=headers) as api:
        run = api.post("/runs", json={"experiment": unique, "origin": _origin()}).json()
        assert (run["source"], run["git_commit"], run["git_dirty"]) == ("train.py", "c" * 40, True)
        env = api.get(f"/environments/{run['env_hash']}").json()
        # the server computes the hashes itself from what the client sent
        assert env["packages"] == ["only-this==1.0"]
        assert run["env_hash"] != capture_environment().env_hash


def test_reaper_marks_remote_runs_of_dead_or_silent_owners(
    platform: dict[str, Any], unique: str
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    headers = {"Authorization": f"Bearer {platform['token']}"}
    rt = platform["rt"]
    with httpx.Client(base_url=f"{platform['url']}/api/v1", headers=headers) as api:
        gone = api.post(
            "/runs", json={"experiment": unique, "origin": _origin(pid=dead_pid, started=1.0)}
        ).json()
        alive = api.post("/runs", json={"experiment": unique, "origin": _origin()}).json()
        far = api.post(
            "/runs", json={"experiment": unique, "origin": _origin(host="elsewhere", pid=1)}
        ).json()
        # the server's process started them, but it does not own them
        would = api.post("/runs/reap", json={"experiments": [unique], "dry_run": True}).json()
        assert [s["run_id"] for s in would["items"]] == [gone["run_id"]]
        # another host's run is stale once its heartbeat is old enough
        timeout_ms = rt.settings.stale_run_timeout * 1000
        with rt.db.write() as conn:
            from milepost.stores.schema import runs

            conn.execute(
                runs.update()
                .where(runs.c.run_id == far["run_id"])
                .values(heartbeat_at=now_ms() - timeout_ms - 5000)
            )
        reaped = api.post("/runs/reap", json={"experiments": [unique]}).json()["items"]
        assert sorted(s["run_id"] for s in reaped) == sorted([gone["run_id"], far["run_id"]])
        assert api.get(f"/runs/{gone['run_id']}").json()["status"] == "KILLED"
        assert api.get(f"/runs/{alive['run_id']}").json()["status"] == "RUNNING"
        api.post(f"/runs/{alive['run_id']}/end", json={"status": "FINISHED"})


def test_the_client_sends_heartbeats(platform: dict[str, Any], tmp_path: Path) -> None:
    env = {
        "MILEPOST_URL": platform["url"],
        "MILEPOST_TOKEN": platform["token"],
        "MILEPOST_HEARTBEAT_INTERVAL": "0.05",
        "MILEPOST_METRIC_FLUSH_INTERVAL": "0.05",
    }
    with RemoteRuntime(load_settings(env=env, cwd=tmp_path)) as remote:
        run = remote.tracking.start_run(experiment="heartbeats")
        store = platform["rt"].tracking.store

        def beat() -> int:
            owner = next(o for o in store.running_owners(run_ids=[run.run_id]))
            return int(owner.heartbeat_at)

        first = beat()
        wait_until(lambda: beat() > first, timeout=10, what="a heartbeat from the client")
        remote.tracking.end_run(run.run_id)
    assert milepost.Client(platform["rt"]).get_run(run.run_id).status is RunStatus.FINISHED
