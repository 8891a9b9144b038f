"""Alert webhooks against a real HTTP server on 127.0.0.1: delivered, refused, failing,
too slow. A webhook never fails a monitor run; what happened is stored with the alert."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd
import pytest

from milepost import Runtime
from milepost.monitoring.service import MonitorService
from milepost.serving.monitor_sources import ServingMonitorSources
from tests.contract.test_monitors import (
    HOUR_MS,
    Clock,
    _frame,
    _log,
    _now_ms,
    serve_churn,
)


class Hook:
    """A webhook receiver: records each POST and answers ``status`` (after ``hold`` is set,
    when one is given)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = 200
        self.hold: threading.Event | None = None
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.headers.append(dict(self.headers))
                if hook.hold is not None:
                    hook.hold.wait(10)
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame) -> str:
    return serve_churn(runtime, churn_models, churn_frame)


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def _drifted(runtime: Runtime) -> None:
    _log(runtime, _frame(300, seed=11), start_ms=_now_ms() - 2 * HOUR_MS + 1)
    _log(runtime, _frame(300, seed=12, age_shift=15), start_ms=_now_ms() - HOUR_MS + 1)


def _service(runtime: Runtime, timeout: float = 5.0) -> MonitorService:
    sources = ServingMonitorSources(runtime.serving, runtime.models)
    return MonitorService(runtime.db, "tester", sources, clock=Clock(), webhook_timeout=timeout)


def test_alerts_are_posted_and_marked_delivered(
    runtime: Runtime, endpoint: str, hook: Hook
) -> None:
    _drifted(runtime)
    svc = _service(runtime)
    svc.create("hooked", endpoint=endpoint, webhook=hook.url)
    run = svc.run("hooked")
    assert run.alerts and all(a.delivered is True and a.delivery_error is None for a in run.alerts)
    (body,) = hook.bodies
    assert hook.headers[0]["Content-Type"] == "application/json"
    assert body["monitor"] == "hooked" and body["run_id"] == run.run_id
    assert body["window_end"] == _now_ms() and body["window_start"] == _now_ms() - HOUR_MS
    posted = {(a["metric"], a["feature"], a["value"]) for a in body["alerts"]}
    assert posted == {(a.metric, a.feature, a.value) for a in run.alerts}
    assert ("wasserstein", "age") in {(a["metric"], a["feature"]) for a in body["alerts"]}
    assert all(a.delivered is True for a in svc.alerts("hooked"))

    # a run without alerts posts nothing
    svc.update("hooked", thresholds={"psi": 1000.0})
    assert svc.run("hooked").alerts == [] and len(hook.bodies) == 1


def test_a_failing_webhook_is_recorded_and_the_run_stands(
    runtime: Runtime, endpoint: str, hook: Hook
) -> None:
    _drifted(runtime)
    svc = _service(runtime, timeout=0.5)
    hook.status = 500
    svc.create("h500", endpoint=endpoint, webhook=hook.url)
    run = svc.run("h500")
    assert run.alerts and {a.delivery_error for a in run.alerts} == {
        "HTTP 500 Internal Server Error"
    }
    assert all(a.delivered is False for a in svc.alerts("h500"))
    assert len(svc.results("h500")) == len(run.results)  # the results are stored

    # nobody listening
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/"
    svc.create("refused", endpoint=endpoint, webhook=closed)
    run = svc.run("refused")
    assert run.alerts and all(a.delivered is False for a in run.alerts)
    assert "refused" in (run.alerts[0].delivery_error or "").lower()

    # too slow: given up after the timeout, recorded as such
    hook.status, hook.hold = 200, threading.Event()
    svc.create("slow", endpoint=endpoint, webhook=hook.url)
    run = svc.run("slow")
    hook.hold.set()
    assert run.alerts and all(a.delivered is False for a in run.alerts)
    assert "timed out" in (run.alerts[0].delivery_error or "")
    assert [a.delivered for a in svc.alerts("slow")] == [False] * len(run.alerts)
