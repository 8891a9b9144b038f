"""The demo's serving steps: a model server under live traffic, a canary that promotes
itself and a faulty one that is rolled back automatically.

The endpoint tracks Production of churn, so every version takes the same road: its
promotion's gates run (and its approval lands) before the canary takes traffic, the
canary's end makes it Production in the registry and primary on the endpoint in one
transaction, and a canary rolled back leaves Production as it was with the request
recorded ``rolled_back``. The final table counts, per variant, exactly the requests the
demo's client sent in a stated window, so the server's numbers and the client's add up.
"""

from __future__ import annotations

import http.client
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table

import milepost
from milepost.demo import promotion
from milepost.demo._child import child_env, free_port
from milepost.errors import Conflict, GateFailed, MilepostError
from milepost.promotion.gates import GateResult
from milepost.serving.analysis import fmt_ms

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from milepost.serving import CanaryPolicy, EndpointSpec

__all__ = [
    "ENDPOINT",
    "ModelServer",
    "Traffic",
    "follow",
    "roll_out",
    "serve_step",
    "status_table",
]

ENDPOINT = "churn"
READY_TIMEOUT = 120.0
VERDICT_TIMEOUT = 120.0


class ModelServer:
    """``milepost endpoints serve ENDPOINT`` in a child process that sees this process's stores."""

    def __init__(self, endpoint: str, *, replicas: int = 2, log_dir: Path) -> None:
        self.endpoint = endpoint
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = child_env()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"serve-{endpoint}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "milepost",
                "endpoints",
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


def _ms_now() -> int:
    return time.time_ns() // 1_000_000


def _next_ms() -> int:
    """Wait for the next millisecond to begin and return it: a window's edge then falls
    between two requests, never inside the millisecond of one (the log keeps ms)."""
    now = _ms_now()
    while (edge := _ms_now()) == now:
        pass
    return edge


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


class Traffic:
    """A steady client: one customer per request (features are read server-side), on a
    keep-alive connection, about ``rate`` requests per second. Counts what it sees, per
    variant, between :attr:`started_ms` and :attr:`stopped_ms` (epoch ms)."""

    def __init__(
        self, server: ModelServer, customers: list[int], *, rate: float = 200, record: bool = False
    ) -> None:
        self.server = server
        self.record = record
        #: (request id, customer) of each answered request, when ``record`` is set
        self.answers: list[tuple[str, int]] = []
        self.customers = customers
        self.pause = 1.0 / rate
        self.ok = 0
        self.failed: Counter[str] = Counter()
        self.variants: Counter[str] = Counter()
        self.started = time.monotonic()
        self.started_ms = _next_ms()  # every request of this client is logged at or after
        self.stopped_ms: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="demo-traffic")
        self._thread.start()
        _TRAFFIC[server.endpoint] = self

    def _run(self) -> None:
        rng = random.Random(7)
        path = f"/v1/endpoints/{self.server.endpoint}/predict"
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        while not self._stop.is_set():
            customer = rng.choice(self.customers)
            body = json.dumps({"rows": [{"customer_id": customer}]})
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                answer = json.loads(resp.read())
                if resp.status == 200:
                    self.ok += 1
                    self.variants[answer["variant"]] += 1
                    if self.record:
                        self.answers.append((answer["request_id"], customer))
                else:
                    self.failed[f"HTTP {resp.status}"] += 1
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.failed[type(exc).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
            time.sleep(self.pause)
        conn.close()

    def stop(self) -> None:
        """Stop sending; wait for the last answer (the window ends after it)."""
        self._stop.set()
        self._thread.join(timeout=15)
        if self.stopped_ms is None:
            self.stopped_ms = _next_ms()

    @property
    def answered(self) -> int:
        """Requests the server answered (with a prediction or an HTTP error)."""
        return self.ok + sum(n for k, n in self.failed.items() if k.startswith("HTTP "))

    def window(self) -> str:
        """``from 12:00:01.234 to 12:00:20.567 UTC (19.3 s)`` (to now while running)."""
        end = self.stopped_ms if self.stopped_ms is not None else _ms_now()
        return (
            f"from {_utc(self.started_ms)} to {_utc(end)} UTC "
            f"({(end - self.started_ms) / 1000:.1f} s)"
        )

    def summary(self) -> str:
        """How many requests in which window, how many failed, which variants answered."""
        failed = sum(self.failed.values())
        by_variant = ", ".join(f"{v} {n:,}" for v, n in sorted(self.variants.items()))
        return (
            f"{self.ok + failed:,} requests {self.window()}, {failed} failed"
            + (f" ({dict(self.failed)})" if failed else "")
            + f"; answered by {by_variant}"
        )


#: the demo's client on each endpoint (the final table counts the same window)
_TRAFFIC: dict[str, Traffic] = {}
LOG_TIMEOUT = 30.0


def status_table(console: Console, endpoint: str) -> None:
    """``milepost endpoints show``'s variant table over the demo client's whole window.

    The client stops first, so that its window is closed; the table then waits until
    the prediction log holds every request the server answered in it, and shows, per
    variant, what the log says next to what the client counted: the same numbers.
    """
    svc = milepost.get_runtime().serving
    traffic = _TRAFFIC.get(endpoint)
    if traffic is None:
        until = _ms_now()
        since, title = until - 300_000, f"the last 300 s to {_utc(until)} UTC"
    else:
        traffic.stop()
        assert traffic.stopped_ms is not None
        since, until, title = traffic.started_ms, traffic.stopped_ms, traffic.window()
    stats = svc.stats(endpoint, since_ms=since, until_ms=until)
    deadline = time.monotonic() + LOG_TIMEOUT
    while traffic is not None and time.monotonic() < deadline:
        if sum(s.requests for s in stats.values()) >= traffic.answered:
            break
        time.sleep(0.2)  # the replicas write their log every second
        stats = svc.stats(endpoint, since_ms=since, until_ms=until)
    spec, _ = svc.get(endpoint)
    roles = {v.name: v.role for v in spec.variants}
    table = Table(
        "variant",
        "role now",
        "requests (log)",
        "client counted",
        "errors",
        "p50",
        "p99",
        title=f"  traffic {title}",
        title_justify="left",
    )
    names = [*roles, *sorted(set(stats) - set(roles))]
    for name in names:
        s = stats.get(name)
        table.add_row(
            name,
            roles.get(name, "(removed)"),
            f"{s.requests:,}" if s else "0",
            f"{traffic.variants.get(name, 0):,}" if traffic is not None else "-",
            str(s.errors) if s else "0",
            fmt_ms(s.p50_ms if s else None),
            fmt_ms(s.p99_ms if s else None),
        )
    console.print(table)
    if traffic is not None:
        differ = {
            n: (stats[n].requests if n in stats else 0, traffic.variants.get(n, 0))
            for n in set(stats) | set(traffic.variants)
            if (stats[n].requests if n in stats else 0) != traffic.variants.get(n, 0)
        }
        console.print(
            "  the prediction log and the client count the same requests, variant by variant"
            if not differ
            else "  the log and the client differ (log, client): "
            + ", ".join(f"{n} {a:,} vs {b:,}" for n, (a, b) in sorted(differ.items()))
            + (
                f"; the client saw {sum(traffic.failed.values())} failures"
                if traffic.failed
                else ""
            )
        )


def serve_step(
    console: Console, customers: list[int], *, log_dir: Path, replicas: int = 2
) -> tuple[ModelServer, Traffic]:
    """Create the endpoint that tracks Production of churn, start the server and live
    traffic, show a prediction with its explanation."""
    svc = milepost.get_runtime().serving
    production = milepost.Client().get_model("churn").production_version
    if ENDPOINT not in svc.list_endpoints():
        spec = svc.create(ENDPOINT, "churn", stage="Production", replicas=replicas)
        console.print(
            f"  endpoint {ENDPOINT!r} created; it {spec.kind}: serves {spec.primary.uri} now, "
            "and a new version only once the registry lets it into Production"
        )
    else:
        spec, _ = svc.get(ENDPOINT)
        if spec.rollout is not None and spec.rollout.status in ("progressing", "preview"):
            spec = svc.rollback(ENDPOINT, reason="the demo starts again")
        console.print(
            f"  endpoint {ENDPOINT!r} exists (an earlier run; it {spec.kind}): serves "
            f"{spec.primary.uri}"
            + ("" if spec.primary.version == production else f"; Production is v{production}")
        )
    started = time.perf_counter()
    server = ModelServer(ENDPOINT, replicas=replicas, log_dir=log_dir)
    console.print(
        f"  milepost endpoints serve {ENDPOINT} --replicas {replicas}: ready on {server.url} in "
        f"{time.perf_counter() - started:.1f} s (log: {server.log_path})",
        soft_wrap=True,
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
    console.print(
        f"  live traffic starts at {_utc(traffic.started_ms)} UTC: a client sends one "
        "customer per request, non-stop, and counts the answers of each variant"
    )
    return server, traffic


def _start_canary(console: Console, version: int, policy: CanaryPolicy) -> EndpointSpec | None:
    """The canary, once its promotion's gates have passed and its approval landed (the
    endpoint tracks Production: the canary starts the promotion when none is approved).
    None when the gates refuse it."""
    client = milepost.Client()
    try:
        return milepost.get_runtime().serving.canary(ENDPOINT, version, policy=policy)
    except GateFailed as exc:
        promotion.show_gates(console, [GateResult(**g) for g in exc.details["gates"]])
        console.print(f"  → refused at its gates: v{version} takes no traffic")
        return None
    except Conflict as exc:
        request_id = (
            (exc.details or {}).get("request_id") if isinstance(exc.details, dict) else None
        )
        if request_id is None:
            raise
        request = client.get_promotion_request(request_id)
        promotion.show_gates(console, request.gates)
        console.print(
            f"  the canary started its promotion (request {request_id[:12]}): the gates "
            f"passed, and it waits for {promotion.APPROVER}, who approves it:"
        )
    promotion.approve(request_id)
    return milepost.get_runtime().serving.canary(ENDPOINT, version, policy=policy)


def roll_out(console: Console, version: int, policy: CanaryPolicy, what: str) -> str:
    """Roll ``version`` out as a canary on the endpoint that tracks Production, and follow
    the controller in ``milepost endpoints serve`` until it promotes or rolls back; print each
    decision and what the registry recorded. Returns the rollout's final status
    (``refused`` when the version's gates refused it before any traffic)."""
    if not promotion.awaiting_rollout(version):
        console.print(
            f"  {what} v{version} has no approved promotion: it takes the same road as any "
            "version, so the canary starts one and its gates run before any traffic"
        )
    spec = _start_canary(console, version, policy)
    if spec is None:
        return "refused"
    assert spec.rollout is not None and spec.rollout.request_id is not None
    request_id = spec.rollout.request_id
    steps = " → ".join(f"{s:g}%" for s in policy.steps)
    console.print(
        f"  canary of {what} v{version} (carries request {request_id[:12]}): {steps}, each "
        f"step >= {policy.min_seconds:g} s and >= {policy.min_requests} canary requests; "
        f"judged on errors and p99 vs {spec.primary.name}"
    )
    return follow(console, version, request_id)


def follow(console: Console, version: int, request_id: str, *, since_ms: int | None = None) -> str:
    """Follow the controller in ``milepost endpoints serve`` until the canary of
    ``version`` promotes or rolls back, printing each decision recorded from ``since_ms``
    (epoch ms; default: from now) and what the registry recorded. Returns the rollout's
    final status."""
    svc = milepost.get_runtime().serving
    seen = {
        (e.at, e.kind) for e in svc.store.events(ENDPOINT) if since_ms is None or e.at < since_ms
    }
    deadline = time.monotonic() + VERDICT_TIMEOUT
    while True:
        spec, _ = svc.get(ENDPOINT)
        for e in reversed(svc.store.events(ENDPOINT)):
            if (e.at, e.kind) not in seen:
                seen.add((e.at, e.kind))
                if e.reason:  # a decision says why (a canary's start has nothing to say)
                    console.print(f"    {e.kind}: {e.reason}", markup=False)
        assert spec.rollout is not None
        if spec.rollout.status != "progressing":
            break
        if time.monotonic() > deadline:
            raise MilepostError(
                f"The canary of v{version} got no verdict in {VERDICT_TIMEOUT:g} s "
                f"({spec.rollout.detail}).",
                hint="Is `milepost endpoints serve` running? See `milepost endpoints show churn`.",
            )
        time.sleep(0.5)
    _registry_says(console, version, request_id)
    return spec.rollout.status


def _registry_says(console: Console, version: int, request_id: str) -> None:
    client = milepost.Client()
    request = client.get_promotion_request(request_id)
    production = client.get_model(promotion.MODEL).production_version
    stage = client.get_model_version(promotion.MODEL, version).stage
    verdict = request.gates[-1] if request.gates else None
    if request.status == "completed":
        console.print(
            f"  registry: request {request_id[:12]} completed; v{version} is Production and "
            f"the primary of {ENDPOINT!r}, both changed in one transaction"
            + (
                f" (v{request.baseline_version} archived, kept warm for a rollback)"
                if request.baseline_version
                else ""
            )
        )
    else:
        console.print(
            f"  registry: request {request_id[:12]} {request.status}"
            + (f" ({verdict.message})" if verdict is not None else "")
            + f"; v{version} stays in {stage}, Production stays v{production}"
        )
