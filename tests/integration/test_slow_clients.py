"""Slow and excess clients against real servers: `milepost serve` and `milepost features serve`.

Hundreds of raw sockets trickle requests a byte at a time (or send nothing); the servers
must close them within their deadlines while normal requests keep succeeding.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

import milepost
from tests._wait import wait_until
from tests.contract.conftest import FEATURES
from tests.e2e.test_cli import MILEPOST, cli_in_process
from tests.e2e.test_cli_features import _free_port, repo  # noqa: F401 - a fixture
from tests.integration.conftest import Endpoint
from tests.integration.test_model_server import Load, Server

pytestmark = pytest.mark.slow

PREDICT = b"POST /v1/endpoints/churn-ep/predict HTTP/1.1\r\nHost: t\r\n"


def _scripts(path: bytes) -> dict[str, tuple[bytes, bytes]]:
    """What each kind of slow client sends at once, then a byte per round (never all)."""
    return {
        "headers": (b"", path + b"X-Pad: " + b"a" * 100_000),
        "body": (
            path + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
            b"{" * 100_000,
        ),
        "idle": (b"", b""),
    }


class Trickle:
    """Sockets that each send their script one byte per round; notes when each is closed."""

    def __init__(self, port: int, kinds: dict[str, int], path: bytes = PREDICT) -> None:
        scripts = _scripts(path)
        self.started = time.monotonic()
        self.sockets: list[tuple[str, socket.socket, bytes]] = []
        for kind, n in kinds.items():
            for _ in range(n):
                sock = socket.create_connection(("127.0.0.1", port))
                head, rest = scripts[kind]
                sock.sendall(head)
                sock.setblocking(False)
                self.sockets.append((kind, sock, rest))
        self.closed: dict[int, float] = {}
        self.answers: Counter[str] = Counter()

    def run(self, seconds: float) -> None:
        """Trickle until every socket is closed by the server, or ``seconds`` passed."""
        pause = threading.Event()
        sent = [0] * len(self.sockets)
        while len(self.closed) < len(self.sockets) and time.monotonic() - self.started < seconds:
            for i, (_kind, sock, script) in enumerate(self.sockets):
                if i in self.closed:
                    continue
                try:
                    data = sock.recv(4096)
                    if not data:
                        self._close(i)
                        continue
                    self.answers[data.split(b"\r\n", 1)[0].decode()] += 1
                except BlockingIOError:
                    pass
                except OSError:  # reset by the server
                    self._close(i)
                    continue
                if sent[i] < len(script):
                    try:
                        sock.send(script[sent[i] : sent[i] + 1])
                        sent[i] += 1
                    except OSError:
                        self._close(i)
            pause.wait(0.05)  # the trickle's pace

    def _close(self, i: int) -> None:
        self.closed[i] = time.monotonic() - self.started
        self.sockets[i][1].close()

    def still_open(self) -> Counter[str]:
        return Counter(k for i, (k, _, _) in enumerate(self.sockets) if i not in self.closed)

    def close(self) -> None:
        for _, sock, _ in self.sockets:
            sock.close()


@pytest.fixture(scope="module")
def deadlines(
    tmp_path_factory: pytest.TempPathFactory,
    endpoint_template: Path,
    churn_frame: pd.DataFrame,
) -> Iterator[tuple[Server, list[dict[str, object]]]]:
    """Two replicas with a 1 s header and a 2 s body deadline, and rows to predict on:
    started once for the tests that only connect to it (a start costs seconds)."""
    home = tmp_path_factory.mktemp("deadlines") / "home"
    shutil.copytree(endpoint_template, home)
    with pytest.MonkeyPatch.context() as env:  # like clean_environ: no outside settings
        for key in list(os.environ):
            if key.startswith("MILEPOST_") and not key.startswith("MILEPOST_TEST_"):
                env.delenv(key)
        endpoint = Endpoint(home, churn_frame[FEATURES].to_dict("records"), {})
        try:
            server = endpoint.start(replicas=2, http_header_timeout=1.0, http_body_timeout=2.0)
        finally:
            milepost.reset()
    try:
        yield server, endpoint.rows
    finally:
        server.stop()


def test_trickling_connections_are_closed_and_cost_nothing(
    deadlines: tuple[Server, list[dict[str, object]]],
) -> None:
    server, rows = deadlines
    port = int(server.url.rsplit(":", 1)[1])
    with Load(server, rows[:200], clients=2) as load:
        trickle = Trickle(port, {"headers": 80, "body": 80, "idle": 40})
        try:
            trickle.run(seconds=20)
        finally:
            trickle.close()
        ok_during = load.ok
    assert trickle.still_open() == Counter(), trickle.still_open()
    # closed by their deadlines (generous slack for a busy test machine): a slow body by
    # the body deadline, which starts once the headers are in
    closed = {
        kind: [t for i, t in trickle.closed.items() if trickle.sockets[i][0] == kind]
        for kind in ("headers", "body", "idle")
    }
    assert max(trickle.closed.values()) < 12, closed
    assert min(closed["body"]) >= 1.9, closed
    assert set(trickle.answers) <= {"HTTP/1.1 408 Request Timeout"}, trickle.answers
    assert load.failures == Counter() and ok_during > 0, load.failures
    assert server.predict(rows[:1]).status_code == 200


def test_a_keep_alive_connection_that_then_trickles_is_closed(
    deadlines: tuple[Server, list[dict[str, object]]],
) -> None:
    server, _ = deadlines
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status":"ok"}'):  # head and body may come apart
            chunk = sock.recv(4096)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\n")  # ... and the rest never comes
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"did not arrive within 1 s" in answer


def test_connections_beyond_the_limit_get_503_and_the_others_keep_working(
    make_endpoint: Callable[..., Endpoint],
) -> None:
    endpoint = make_endpoint()
    server = endpoint.start(http_max_connections=20, http_header_timeout=60.0)
    port = int(server.url.rsplit(":", 1)[1])
    with httpx.Client(timeout=10) as early:  # connected while there is room
        assert early.get(f"{server.url}/health").status_code == 200
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(25)]
        try:
            late = httpx.post(
                f"{server.url}/v1/endpoints/churn-ep/predict",
                json={"rows": endpoint.rows[:1]},
                timeout=10,
            )
            assert late.status_code == 503, late.text
            assert late.headers["retry-after"] == "1" and "20 open connections" in late.text
            kept = early.post(
                f"{server.url}/v1/endpoints/churn-ep/predict", json={"rows": endpoint.rows[:1]}
            )
            assert kept.status_code == 200
        finally:
            for sock in idle:
                sock.close()
    wait_until(
        lambda: server.predict(endpoint.rows[:1]).status_code == 200,
        what="the server to answer again once the idle connections closed",
        timeout=20,
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_the_feature_server_closes_trickling_connections(
    repo: Path,  # noqa: F811 - the fixture imported above
    workers: int,
) -> None:
    assert cli_in_process("features", "apply", cwd=repo).returncode == 0
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env |= {"MILEPOST_HTTP_HEADER_TIMEOUT": "1", "MILEPOST_HTTP_BODY_TIMEOUT": "1"}
    log = (repo / "server.log").open("wb")
    server = subprocess.Popen(
        [MILEPOST, "features", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=repo,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200,
            what="the feature server to start",
            ignore=(httpx.TransportError,),
        )
        trickle = Trickle(
            port,
            {"headers": 20, "body": 20, "idle": 10},
            path=b"POST /v1/features/online HTTP/1.1\r\nHost: t\r\n",
        )
        try:
            trickle.run(seconds=20)
        finally:
            trickle.close()
        assert trickle.still_open() == Counter(), trickle.still_open()
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
