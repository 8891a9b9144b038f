"""Remote metric logging while the server goes away and comes back: nothing is lost
silently. ``flush()`` raises a clear ``BackendUnavailable`` while the server is down (the
values stay queued) and writes everything once it is back."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import milepost
from milepost.client import RemoteRuntime
from milepost.config import load_settings
from milepost.errors import BackendUnavailable, PermissionDenied
from milepost.server.api import create_app
from milepost.server.listen import listen
from tests._wait import wait_until


@contextlib.contextmanager
def _serve(rt: Any, port: int) -> Iterator[int]:
    """The platform app on a given loopback port (0: a free one), in a thread."""
    sock = listen("127.0.0.1", port)
    config = uvicorn.Config(create_app(rt), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=10, what="the platform server to start")
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _remote(url: str, token: str, home: Path) -> RemoteRuntime:
    env = {
        "MILEPOST_URL": url,
        "MILEPOST_TOKEN": token,
        "MILEPOST_METRIC_FLUSH_TIMEOUT": "0.5",
        "MILEPOST_METRIC_FLUSH_INTERVAL": "0.05",
    }
    return RemoteRuntime(load_settings(env=env, cwd=home))


def test_server_down_then_back(tmp_path: Path) -> None:
    with milepost.Runtime.open(home=str(tmp_path / ".milepost"), user="olga") as rt:
        _, secret = rt.tokens.create("outage", "member")
        with _serve(rt, 0) as port:
            remote = _remote(f"http://127.0.0.1:{port}", secret, tmp_path)
            tracking = remote.tracking
            run = tracking.start_run(experiment="outage")
            for step in range(100):
                tracking.log_metric(run.run_id, "loss", float(step), step=step)
            tracking.flush()
        # the server is gone: values queue, flush says so and keeps them
        for step in range(100, 250):
            tracking.log_metric(run.run_id, "loss", float(step), step=step)
        with pytest.raises(BackendUnavailable, match="could not be written") as caught:
            tracking.flush()
        assert f"127.0.0.1:{port}" in str(caught.value)
        assert "MILEPOST_URL" in str(caught.value)
        assert len(rt.tracking.store.metric_history(run.run_id, "loss")) == 100
        with _serve(rt, port):  # back on the same address
            tracking.flush()
            history = rt.tracking.store.metric_history(run.run_id, "loss")
            assert [m.step for m in history] == list(range(250))
            tracking.end_run(run.run_id)
            remote.close()
        assert rt.tracking.get_run(run.run_id).status.value == "FINISHED"


def test_a_refused_batch_raises_at_once_and_stays_queued(tmp_path: Path) -> None:
    with milepost.Runtime.open(home=str(tmp_path / ".milepost"), user="olga") as rt:
        token, secret = rt.tokens.create("short-lived", "member")
        with _serve(rt, 0) as port:
            remote = _remote(f"http://127.0.0.1:{port}", secret, tmp_path)
            run = remote.tracking.start_run(experiment="revoked")
            remote.tracking.log_metric(run.run_id, "x", 1.0)
            remote.tracking.flush()
            rt.tokens.revoke(token.token_id)
            remote.tracking.log_metric(run.run_id, "x", 2.0, step=1)
            with pytest.raises(PermissionDenied):
                remote.tracking.flush()
            assert remote.tracking._batcher.pending == 1
            with contextlib.suppress(PermissionDenied):
                remote.close()
