"""The feature server keeps answering while an online store call hangs (real servers).

The hang is real: the online store is a Redis URL whose port is a TCP listener on
127.0.0.1 that accepts connections and never answers, so redis-py waits for its socket
timeout (5 s) on every call.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests._wait import wait_until
from tests.e2e.test_cli import MILEPOST, cli

REPO = """
from datetime import timedelta
from milepost.features import Entity, FeatureView, Field, FileSource, OnDemandFeatureView

customer = Entity("customer", join_keys=["customer_id"])

spend = FeatureView(name="spend", entity=customer, source=FileSource("spend.parquet"),
                    timestamp_field="ts", ttl=timedelta(days=7), schema=[Field("spend")])

def with_tax(df):
    df["gross"] = df["net"] * 1.2
    return df

# request data only: answering it needs no online store call
tax = OnDemandFeatureView(name="tax", sources=[], request_schema=[Field("net")],
                          schema=[Field("gross")], transform=with_tax)
"""


class Blackhole:
    """A TCP listener that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_health_and_other_requests_answer_while_a_store_call_hangs(
    tmp_path: Path, blackhole: Blackhole
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    pd.DataFrame(
        {"customer_id": [1, 2], "ts": [now - timedelta(hours=1)] * 2, "spend": [1.0, 2.0]}
    ).to_parquet(tmp_path / "spend.parquet")
    (tmp_path / "features.py").write_text(REPO)
    assert cli("features", "apply", cwd=tmp_path).returncode == 0
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env["MILEPOST_ONLINE_URI"] = f"redis://127.0.0.1:{blackhole.port}/0"
    env["MILEPOST_FEATURE_SERVER_TIMEOUT"] = "3"
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [MILEPOST, "features", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    pool = ThreadPoolExecutor(2)
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                return False

        wait_until(up, what="the feature server to start")
        hung: Future[httpx.Response] = pool.submit(
            httpx.post,
            f"{url}/v1/features/online",
            json={"features": ["spend:spend"], "entities": [{"customer_id": 1}]},
            timeout=30,
        )
        wait_until(lambda: blackhole.accepted, what="the online store call to reach the listener")
        # the store call is pending; everything that does not need it is answered now
        health = httpx.get(f"{url}/health", timeout=2)
        assert health.status_code == 200
        tax = httpx.post(
            f"{url}/v1/features/online",
            json={"features": ["tax:gross"], "entities": [{"net": 10.0}]},
            timeout=2,
        )
        assert tax.status_code == 200 and tax.json()["values"] == {"gross": [12.0]}
        typo = httpx.post(
            f"{url}/v1/features/online",
            json={"features": ["spend:spnd"], "entities": [{"customer_id": 1}]},
            timeout=2,
        )
        assert typo.status_code == 404 and "Did you mean 'spend'" in typo.json()["message"]
        assert not hung.done()
        answer = hung.result(timeout=30)
        assert answer.status_code == 504, answer.text
        body = answer.json()
        assert body["code"] == "timeout"
        assert f"redis://127.0.0.1:{blackhole.port}/0 did not answer within 3 s" in body["message"]
        assert "feature_server_timeout" in body["hint"]
        assert httpx.get(f"{url}/health", timeout=2).status_code == 200
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        server.terminate()
        server.wait(timeout=15)
        log.close()
