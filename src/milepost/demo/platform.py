"""The demo's sharing step: the platform server, a remote client, tokens and roles.

A team shares one Milepost: ``milepost server`` runs over the demo's stores in its own
process; a CI job logs a run through it with a member token (same calls as embedded,
metrics batched over HTTP); the run's author is the token's user; a viewer's token reads
but cannot write; and the remote search answers what the embedded one does.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import httpx
from rich.table import Table

import milepost
from milepost.client import RemoteRuntime
from milepost.config import load_settings
from milepost.demo._child import child_env, free_port
from milepost.errors import BackendUnavailable, PermissionDenied

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from rich.console import Console

__all__ = ["EXPERIMENT", "PlatformServer", "platform_step"]

#: The experiment the demo's CI job logs to through the server.
EXPERIMENT = "churn-ci"
READY_TIMEOUT = 60.0
#: Metric points the CI job logs (one curve of 50 steps for each of 4 metrics).
_STEPS = 50
_METRICS = ("loss", "val_loss", "roc_auc", "lr")


class PlatformServer:
    """``milepost server`` in a child process over this process's stores."""

    def __init__(self, *, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = child_env()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / "platform-server.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "milepost", "server", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise BackendUnavailable(
            f"`milepost server` did not start on {self.url}.",
            hint=f"Its log is {self.log_path}.",
        )

    def stop(self) -> None:
        """Stop the server (graceful, then kill)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@contextlib.contextmanager
def _remote(url: str, token: str, cwd: Path) -> Iterator[milepost.Client]:
    runtime = RemoteRuntime(
        load_settings(env={"MILEPOST_URL": url, "MILEPOST_TOKEN": token}, cwd=cwd)
    )
    try:
        yield milepost.Client(runtime)
    finally:
        runtime.close()


def platform_step(console: Console, log_dir: Path) -> dict[str, Any]:
    """Serve the demo's stores, log a run remotely as CI, show who may do what."""
    rt = milepost.get_runtime()
    home = rt.settings.home
    _, ci_token = rt.tokens.create("demo-ci", "member", user="ci-bot", expires_in_days=1)
    _, viewer_token = rt.tokens.create(
        "demo-dashboard", "viewer", user="dashboard", expires_in_days=1
    )
    server = PlatformServer(log_dir=log_dir)
    try:
        console.print(
            f"  `milepost server` on {server.url} (API /api/v1, OpenAPI "
            "/api/v1/openapi.json, web UI /); tokens made: ci-bot (member), dashboard "
            "(viewer), each stored hashed, expiring in 1 day"
        )
        with _remote(server.url, ci_token, home.parent) as ci:
            ci.create_experiment(EXPERIMENT)
            run = ci.create_run(EXPERIMENT, run_name="nightly-ci")
            ci.log_param(run.run_id, "trigger", "push to main")
            for step in range(_STEPS):
                for i, key in enumerate(_METRICS):
                    ci.log_metric(run.run_id, key, 1.0 / (step + 2 + i), step=step)
            ci.flush()  # the batches are durable on the server from here
            ci.set_terminated(run.run_id)
            remote_ids = [r.run_id for r in ci.search_runs(EXPERIMENT)]
        stored = rt.tracking.get_run(run.run_id)
        history = rt.tracking.get_metric_history(run.run_id, "loss")
        embedded_ids = [r.run_id for r in milepost.Client().search_runs(EXPERIMENT)]
        with _remote(server.url, viewer_token, home.parent) as viewer:
            reads = len(viewer.list_experiments())
            try:
                viewer.create_experiment("not-allowed")
                refused = ""
            except PermissionDenied as exc:
                refused = exc.message
    finally:
        server.stop()

    table = Table("who", "token role", "did", "result")
    table.add_row(
        "ci-bot",
        "member",
        f"logged run {run.run_id[:12]}: 1 param, {len(_METRICS) * _STEPS} metric points",
        f"stored; author {stored.user}; {len(history)} loss points",
    )
    table.add_row("dashboard", "viewer", "listed experiments", f"{reads} experiments")
    table.add_row(
        "dashboard", "viewer", "created an experiment", "[red]refused (403)[/]" if refused else "?"
    )
    console.print(table)
    same = remote_ids == embedded_ids
    console.print(
        f"  remote search of {EXPERIMENT!r}: {len(remote_ids)} run(s), "
        + ("the same ids as embedded" if same else "[red]different from embedded[/]")
    )
    return {
        "url": server.url,
        "run": run.run_id,
        "author": stored.user,
        "metric_points": len(_METRICS) * _STEPS,
        "loss_points": len(history),
        "same_search": same,
        "viewer_reads": reads,
        "viewer_refused": refused,
    }
