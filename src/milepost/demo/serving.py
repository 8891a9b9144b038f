"""The demo's serving steps: a model server under live traffic, a canary that promotes
itself and a faulty one that is rolled back automatically."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from rich.table import Table

import milepost
from milepost.errors import MilepostError

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from milepost.serving import CanaryPolicy

__all__ = ["ENDPOINT", "ModelServer", "Traffic", "roll_out", "serve_step", "status_table"]

ENDPOINT = "churn"
READY_TIMEOUT = 120.0
VERDICT_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ModelServer:
    """``milepost serve ENDPOINT`` in a child process that sees this process's stores."""

    def __init__(self, endpoint: str, *, replicas: int = 2, log_dir: Path) -> None:
        self.endpoint = endpoint
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = milepost.get_runtime().settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
        env |= settings.to_env()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"serve-{endpoint}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "milepost",
                "serve",
                endpoint,
                "--port",
                str(self.port),
                "--replicas",
                str(replicas),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self.request("GET", "/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise MilepostError(
            f"The model server for {endpoint!r} did not become ready.",
            hint=f"See its log: {self.log_path}",
        )

    def request(
        self, method: str, path: str, payload: Any = None, *, timeout: float = 30
    ) -> tuple[int, Any]:
        """One HTTP request; the status and the decoded JSON (or text) body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            body = None if payload is None else json.dumps(payload)
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")

    def predict(self, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """``POST /v1/endpoints/{endpoint}/predict``; raises on an error answer."""
        status, body = self.request(
            "POST", f"/v1/endpoints/{self.endpoint}/predict", {"rows": rows, **extra}
        )
        if status != 200:
            raise MilepostError(f"The model server answered {status}: {body}")
        return dict(body)

    def stop(self) -> None:
        """SIGTERM: the supervisor drains its replicas and flushes the prediction log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> ModelServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Traffic:
    """A steady client: one customer per request (features are read server-side), on a
    keep-alive connection, about ``rate`` requests per second. Counts what it sees."""

    def __init__(self, server: ModelServer, customers: list[int], *, rate: float = 200) -> None:
        self.server = server
        self.customers = customers
        self.pause = 1.0 / rate
        self.ok = 0
        self.failed: Counter[str] = Counter()
        self.variants: Counter[str] = Counter()
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="demo-traffic")
        self._thread.start()

    def _run(self) -> None:
        rng = random.Random(7)
        path = f"/v1/endpoints/{self.server.endpoint}/predict"
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        while not self._stop.is_set():
            body = json.dumps({"rows": [{"customer_id": rng.choice(self.customers)}]})
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                answer = json.loads(resp.read())
                if resp.status == 200:
                    self.ok += 1
                    self.variants[answer["variant"]] += 1
                else:
                    self.failed[f"HTTP {resp.status}"] += 1
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.failed[type(exc).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
            time.sleep(self.pause)
        conn.close()

    def stop(self) -> None:
        """Stop sending; wait for the last request."""
        self._stop.set()
        self._thread.join(timeout=15)

    def summary(self) -> str:
        """How many requests, how many failed, which variants answered."""
        seconds = time.monotonic() - self.started
        failed = sum(self.failed.values())
        by_variant = ", ".join(f"{v} {n:,}" for v, n in sorted(self.variants.items()))
        return (
            f"{self.ok + failed:,} requests in {seconds:.0f} s, {failed} failed"
            + (f" ({dict(self.failed)})" if failed else "")
            + f"; answered by {by_variant}"
        )


def status_table(console: Console, endpoint: str) -> None:
    """``milepost deploy status``'s variant table."""
    data = milepost.get_runtime().serving.status(endpoint)
    table = Table("variant", "role", "requests", "errors", "p50 ms", "p99 ms")
    for v in data["variants"]:
        s = data["stats"].get(v["name"], {})
        table.add_row(
            v["name"],
            v["role"],
            str(s.get("requests", 0)),
            str(s.get("errors", 0)),
            *(f"{s[k]:.2f}" if s.get(k) is not None else "-" for k in ("p50_ms", "p99_ms")),
        )
    console.print(table)


def serve_step(
    console: Console, customers: list[int], *, log_dir: Path, replicas: int = 2
) -> tuple[ModelServer, Traffic]:
    """Deploy Production on an endpoint, start the server and live traffic, show a
    prediction with its explanation."""
    svc = milepost.get_runtime().serving
    production = milepost.Client().get_model("churn").production_version
    if ENDPOINT not in svc.endpoints():
        spec = svc.create(ENDPOINT, "churn", replicas=replicas)
        console.print(f"  endpoint {ENDPOINT!r} created: serves {spec.primary.uri}")
    else:
        spec, _ = svc.get(ENDPOINT)
        if spec.rollout is not None and spec.rollout.status in ("progressing", "preview"):
            spec = svc.rollback(ENDPOINT, reason="the demo starts again")
        console.print(
            f"  endpoint {ENDPOINT!r} exists (an earlier run): serves {spec.primary.uri}"
            + ("" if spec.primary.version == production else f"; Production is v{production}")
        )
    started = time.perf_counter()
    server = ModelServer(ENDPOINT, replicas=replicas, log_dir=log_dir)
    console.print(
        f"  milepost serve {ENDPOINT} --replicas {replicas}: ready on {server.url} in "
        f"{time.perf_counter() - started:.1f} s (log: {server.log_path})"
    )
    try:
        customer = customers[0]
        answer = server.predict([{"customer_id": customer}], explain=True)
        proba = answer["probabilities"][0][1]
        contributions = answer["explanations"][0]["contributions"]
        top = sorted(contributions.items(), key=lambda kv: -abs(kv[1]))[:3]
        console.print(
            f"  POST /v1/endpoints/{ENDPOINT}/predict {{customer_id: {customer}, explain: true}}"
            f" → {answer['variant']}: churn probability {proba:.2f}; the server read the "
            "customer's online features itself"
        )
        console.print(
            "  SHAP, the largest contributions: "
            + ", ".join(f"{name} {value:+.3f}" for name, value in top)
        )
        traffic = Traffic(server, customers)
    except BaseException:
        server.stop()
        raise
    console.print("  live traffic starts: a client sends one customer per request, non-stop")
    return server, traffic


def roll_out(console: Console, version: int, policy: CanaryPolicy, what: str) -> str:
    """Start a canary of ``version`` and follow the controller in ``milepost serve`` until
    it promotes or rolls back; print each decision. Returns the rollout's final status."""
    svc = milepost.get_runtime().serving
    spec = svc.canary(ENDPOINT, version, policy=policy)
    steps = " → ".join(f"{s:g}%" for s in policy.steps)
    console.print(
        f"  canary of {what} v{version}: {steps}, each step >= {policy.min_seconds:g} s and "
        f">= {policy.min_requests} canary requests; judged on errors and p99 vs "
        f"{spec.primary.name}"
    )
    seen = {(e["at"], e["kind"]) for e in svc.store.events(ENDPOINT)}
    deadline = time.monotonic() + VERDICT_TIMEOUT
    while True:
        spec, _ = svc.get(ENDPOINT)
        for e in reversed(svc.store.events(ENDPOINT)):
            if (e["at"], e["kind"]) not in seen:
                seen.add((e["at"], e["kind"]))
                console.print(f"    {e['kind']}: {e['reason'] or ''}", markup=False)
        assert spec.rollout is not None
        if spec.rollout.status != "progressing":
            return spec.rollout.status
        if time.monotonic() > deadline:
            raise MilepostError(
                f"The canary of v{version} got no verdict in {VERDICT_TIMEOUT:g} s "
                f"({spec.rollout.detail}).",
                hint="Is `milepost serve` running? See `milepost deploy status churn`.",
            )
        time.sleep(0.5)
