"""The model server as clients see it: real processes, real HTTP on 127.0.0.1, under load."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

import milepost
from milepost import Client
from milepost.demo.serving import ModelServer
from milepost.demo.training import preprocess
from tests._wait import wait_until
from tests.conftest import optional_import
from tests.contract.conftest import FEATURES

pytestmark = pytest.mark.slow

#: seconds a rollout, a canary verdict or a replacement replica may take; waits end as
#: soon as the condition holds, and a loaded 2-core machine needs well over a minute
ROLLOUT_TIMEOUT = 180


class Server:
    """`python -m milepost serve` in a subprocess (the demo's launcher), seen over httpx."""

    def __init__(self, home: Path, endpoint: str, replicas: int = 2) -> None:
        self.process = ModelServer(endpoint, replicas=replicas, log_dir=home)
        self.url = self.process.url
        self.endpoint = endpoint

    def predict(self, rows: list[dict[str, Any]], **kw: Any) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/endpoints/{self.endpoint}/predict",
            json={"rows": rows, **kw},
            timeout=10,
        )

    def replicas(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.proc.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> None:
        self.process.stop()


class Load:
    """Constant load from a few keep-alive clients; counts every failure a client sees."""

    def __init__(self, server: Server, rows: list[dict[str, Any]], clients: int = 4) -> None:
        self.server = server
        self.rows = rows
        self.stop_flag = threading.Event()
        self.ok = 0
        self.failures: Counter[str] = Counter()
        self.variants: Counter[str] = Counter()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]

    def _run(self, i: int) -> None:
        url = f"{self.server.url}/v1/endpoints/{self.server.endpoint}/predict"
        with httpx.Client(timeout=10) as client:
            n = 0
            while not self.stop_flag.is_set():
                n += 1
                try:
                    r = client.post(
                        url,
                        json={
                            "rows": [self.rows[(i * 7919 + n) % len(self.rows)]],
                            "key": f"user-{i}-{n}",
                        },
                    )
                    if r.status_code == 200:
                        self.ok += 1
                        self.variants[r.json()["variant"]] += 1
                    else:
                        self.failures[f"status {r.status_code}"] += 1
                except httpx.TransportError as exc:
                    self.failures[type(exc).__name__] += 1

    def answered(self, n: int = 20, what: str = "") -> None:
        """Wait until the clients got ``n`` more answers: the load ran through a state."""
        target = self.ok + n
        wait_until(
            lambda: self.ok >= target,
            what=f"{n} more answers under load{what}",
            timeout=ROLLOUT_TIMEOUT,
        )

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join()


@pytest.fixture(scope="module")
def slow_forest(churn_frame: pd.DataFrame) -> Pipeline:
    """A 400-tree forest, trained once per module (only read by the tests)."""
    slow = Pipeline(
        [
            ("prep", preprocess(False)),
            ("model", RandomForestClassifier(n_estimators=400, random_state=0)),
        ]
    )
    return slow.fit(churn_frame[FEATURES].iloc[:2000], churn_frame["churned"].iloc[:2000])


@pytest.fixture
def served(
    tmp_path: Path,
    churn_models: dict[str, Any],
    churn_frame: pd.DataFrame,
    slow_forest: Pipeline,
) -> Iterator[dict[str, Any]]:
    """A registry of this test's own: every test here changes the endpoint's routing."""
    optional_import("skl2onnx", extra="onnx")
    optional_import("shap", extra="explain")
    home = tmp_path / "home"
    rt = milepost.configure(home=home)
    for key, model in (
        ("good", churn_models["good"]),
        ("weak", churn_models["weak"]),
        ("slow", slow_forest),
    ):
        with milepost.start_run(experiment="serving"):
            milepost.log_model(
                model,
                "churn",
                input_example=churn_frame[FEATURES].head(3),
                onnx=key != "slow",
                description=key,
            )
    Client().promote("churn", 1, "Production")
    # pinned: these tests exercise the strategies' routing; the registry's part is in
    # test_a_canary_on_a_tracking_endpoint_moves_production_when_it_completes
    rt.serving.create("churn-ep", "churn", version=1)
    rows = churn_frame[FEATURES].head(200).to_dict("records")
    servers: list[Server] = []

    def start(replicas: int = 2, endpoint: str = "churn-ep") -> Server:
        servers.append(Server(home, endpoint, replicas))
        return servers[-1]

    yield {"rt": rt, "rows": rows, "start": start, "home": home}
    for s in servers:
        s.stop()
    milepost.reset()


def test_predict_explain_feedback_metrics_and_bad_requests(served: dict[str, Any]) -> None:
    server = served["start"](1)
    rows = served["rows"]
    r = server.predict(rows[:3])
    assert r.status_code == 200
    body = r.json()
    assert body["variant"] == "churn-v1" and body["model"] == "models:/churn/1"
    assert len(body["predictions"]) == 3 and len(body["probabilities"][0]) == 2
    explained = httpx.post(
        f"{server.url}/v1/endpoints/churn-ep/explain", json={"rows": rows[:2]}, timeout=60
    )
    assert explained.status_code == 200
    for proba, ex in zip(
        explained.json()["probabilities"], explained.json()["explanations"], strict=True
    ):
        logit = math.log(proba[1] / proba[0])
        assert ex["base_value"] + sum(ex["contributions"].values()) == pytest.approx(
            logit, abs=1e-6
        )
        assert set(ex["contributions"]) == set(FEATURES)
    fb = httpx.post(
        f"{server.url}/v1/endpoints/churn-ep/feedback",
        json={"request_id": body["request_id"], "labels": [0, 1, 0]},
        timeout=5,
    )
    assert fb.status_code == 200 and fb.json()["recorded"] == 3
    bad = {
        "missing column": (
            {"rows": [{k: v for k, v in rows[0].items() if k != "age"}]},
            400,
            "missing column 'age'",
        ),
        "wrong type": ({"rows": [{**rows[0], "age": "forty"}]}, 400, "'age' is str"),
        "no rows": ({"rows": []}, 400, "non-empty list"),
        "not json": (b"{nope", 400, "not JSON"),
    }
    for name, (payload, status, text) in bad.items():
        url = f"{server.url}/v1/endpoints/churn-ep/predict"
        if isinstance(payload, bytes):
            resp = httpx.post(url, content=payload, timeout=5)
        else:
            resp = httpx.post(url, json=payload, timeout=5)
        assert resp.status_code == status and text in resp.json()["message"], name
    unknown = httpx.post(
        f"{server.url}/v1/endpoints/other/predict", json={"rows": rows[:1]}, timeout=5
    )
    assert unknown.status_code == 404
    huge = httpx.post(
        f"{server.url}/v1/endpoints/churn-ep/predict", content=b"x" * (11 * 1024 * 1024), timeout=30
    )
    assert huge.status_code == 413
    metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
    assert 'milepost_requests_total{endpoint="churn-ep",status="ok",variant="churn-v1"}' in metrics
    assert "milepost_request_latency_seconds_bucket" in metrics

    def logged() -> pd.DataFrame:
        segments = served["rt"].serving.store.segments("churn-ep")
        if not segments:
            return pd.DataFrame({"request_id": [], "status": []})
        return pd.concat([pd.read_parquet(p) for p in segments])

    wait_until(  # the prediction log is flushed every second, off the request path
        lambda: (
            body["request_id"] in set(logged()["request_id"])
            and {"ok", "invalid"} <= set(logged()["status"])
        ),
        what="the prediction log to hold the good and the refused requests",
    )
    logged = logged()
    # the replica wrote its segments to the artifact store (readable from any host)
    artifacts = str(Path(served["rt"].settings.resolved_artifact_uri()).resolve())
    for location in served["rt"].serving.store.segments("churn-ep"):
        assert str(Path(location).resolve()).startswith(artifacts + os.sep), location
    first = logged[logged.request_id == body["request_id"]].sort_values("row")
    assert list(first["prediction"]) == [str(p) for p in body["predictions"]]
    assert set(logged["status"]) == {"ok", "invalid"}


def test_no_request_fails_during_rolling_switch_rollback_and_a_failing_shadow(
    served: dict[str, Any],
) -> None:
    server = served["start"](2)
    svc = served["rt"].serving
    with Load(server, served["rows"]) as load:
        load.answered(40)
        svc.rolling("churn-ep", 2)  # the supervisor replaces both replicas, one at a time
        wait_until(
            lambda: svc.get("churn-ep")[0].rollout.status != "in_progress",
            what="the rolling update to finish",
            timeout=ROLLOUT_TIMEOUT,
        )
        rollout = svc.get("churn-ep")[0].rollout
        assert rollout.status == "succeeded", rollout.detail
        load.answered(40)
        for what, change in (
            ("the instant rollback", lambda: svc.rollback("churn-ep", reason="instant")),
            ("blue/green", lambda: svc.blue_green("churn-ep", 2)),
            ("the switch", lambda: svc.switch("churn-ep")),
            ("the rollback", lambda: svc.rollback("churn-ep")),
            ("the slow shadow", lambda: svc.shadow("churn-ep", 3)),  # answers nobody
        ):
            change()
            _applied(server, what)
            load.answered(40, f" after {what}")
    assert load.failures == Counter(), load.failures
    assert load.ok > 200
    assert set(load.variants) <= {"churn-v1", "churn-v2"}
    assert {"churn-v1", "churn-v2"} <= set(load.variants)


def test_routing_changes_reach_every_replica_and_host_within_a_second(
    served: dict[str, Any],
) -> None:
    # pinning a variant that takes no traffic (the preview) needs the server's token
    svc = milepost.configure(
        home=served["home"], serving_token="smoke-test-token-0123456789"
    ).serving
    a, b = served["start"](2), served["start"](1)
    svc.blue_green("churn-ep", 2)
    assert a.predict(served["rows"][:1]).json()["variant"] == "churn-v1"

    # the preview answers when pinned by header (smoke tests) once its replicas loaded it
    answers: list[httpx.Response] = []

    def pinned() -> httpx.Response | None:
        r = httpx.post(
            f"{a.url}/v1/endpoints/churn-ep/predict",
            json={"rows": served["rows"][:1]},
            headers={
                "X-Milepost-Variant": "churn-v2",
                "Authorization": "Bearer smoke-test-token-0123456789",
            },
            timeout=5,
        )
        answers.append(r)
        return r if r.status_code == 200 else None

    forced = wait_until(
        pinned,
        what="the preview to answer when pinned",
        timeout=ROLLOUT_TIMEOUT,
        detail=lambda: f"last answer: {answers[-1].status_code} {answers[-1].text}",
    )
    assert forced.json()["variant"] == "churn-v2"
    assert a.predict(served["rows"][:1]).json()["variant"] == "churn-v1"
    svc.switch("churn-ep")

    def seen() -> set[str]:
        return {s.predict(served["rows"][:1]).json()["variant"] for s in (a, b) for _ in range(20)}

    # routing is polled twice a second; the timeout leaves slack for a loaded machine
    wait_until(lambda: seen() == {"churn-v2"}, what="every replica to switch", timeout=3)
    assert seen() == {"churn-v2"}


def test_a_killed_replica_is_replaced(served: dict[str, Any]) -> None:
    server = served["start"](2)
    with Load(server, served["rows"], clients=2) as load:
        load.answered(20)
        victim = server.replicas()[0]
        os.kill(victim, signal.SIGKILL)
        # the event is written once the replacement is ready to serve
        wait_until(
            lambda: "replica.replaced" in _kinds(served),
            what="the killed replica to be replaced",
            timeout=ROLLOUT_TIMEOUT,
        )
        load.answered(20, " after the replacement")
    assert "replica.replaced" in _kinds(served)
    assert len(server.replicas()) == 2 and victim not in server.replicas()
    assert sum(load.failures.values()) <= 2  # at most what was in flight on the victim
    assert load.ok > 0 and server.predict(served["rows"][:1]).status_code == 200


def _kinds(served: dict[str, Any]) -> list[str]:
    return [e.kind for e in served["rt"].serving.store.events("churn-ep")]


def test_a_replica_that_cannot_start_aborts_the_rolling_update(served: dict[str, Any]) -> None:
    server = served["start"](1)
    svc = served["rt"].serving
    rt = served["rt"]
    spec = svc.rolling("churn-ep", 2)
    assert spec.rollout.status == "in_progress"
    # the candidate's file is damaged after the deploy checked it: a new replica cannot load it
    damaged = Path(rt.blobs.location(rt.models.get_version("churn", 2).files["model.skops"]))
    damaged.chmod(0o644)
    damaged.write_bytes(b"broken")
    wait_until(
        lambda: svc.get("churn-ep")[0].rollout.status != "in_progress",
        what="the rolling update to give up",
        timeout=ROLLOUT_TIMEOUT,
    )
    spec, _ = svc.get("churn-ep")
    assert spec.rollout.status == "rolled_back" and spec.primary.name == "churn-v1"
    assert server.predict(served["rows"][:1]).json()["variant"] == "churn-v1"


def test_a_slow_canary_is_rolled_back_and_a_healthy_one_promotes_itself(
    served: dict[str, Any],
) -> None:
    server = served["start"](2)
    svc = served["rt"].serving

    def wait_for_verdict() -> Any:
        return _verdict(svc, "churn-ep")

    with Load(server, served["rows"], clients=3) as load:
        load.answered(20)
        # version 3: a 400-tree forest without ONNX, far slower than the ONNX primary
        svc.canary(
            "churn-ep",
            3,
            policy=milepost.serving.CanaryPolicy(
                steps=[50, 100], min_seconds=1, min_requests=20, max_p99_ratio=3
            ),
        )
        spec = wait_for_verdict()
        assert spec.rollout.status == "rolled_back", spec.rollout.detail
        assert "p99" in spec.rollout.detail
        assert [v.name for v in spec.variants] == ["churn-v1"]
        # version 2 answers within the (here generous) latency budget: it walks every step
        svc.canary(
            "churn-ep",
            2,
            policy=milepost.serving.CanaryPolicy(
                steps=[50, 100], min_seconds=1, min_requests=20, max_p99_ratio=1000
            ),
        )
        spec = wait_for_verdict()
        assert spec.rollout.status == "succeeded", spec.rollout.detail
        assert spec.primary.name == "churn-v2"
        load.answered(20, " on the new primary")
    assert sum(load.failures.values()) == 0
    assert load.variants["churn-v3"] > 0 and load.variants["churn-v2"] > 0
    kinds = _kinds(served)
    assert "rollback" in kinds and "canary.promote" in kinds
    assert server.predict(served["rows"][:1]).json()["variant"] == "churn-v2"


def _applied(server: Server, what: str) -> None:
    """Wait until the server answers with the endpoint's latest routing revision."""
    revision = milepost.get_runtime().serving.get(server.endpoint)[1]
    url = f"{server.url}/v1/endpoints/{server.endpoint}"
    wait_until(
        lambda: httpx.get(url, timeout=5).json()["revision"] >= revision,
        what=f"the server to apply {what} (revision {revision})",
    )


def _verdict(svc: Any, endpoint: str) -> Any:
    """Wait for the canary controller's verdict; the endpoint's spec once it has one."""
    wait_until(
        lambda: svc.get(endpoint)[0].rollout.status != "progressing",
        what=f"a verdict on the canary of {endpoint}",
        timeout=ROLLOUT_TIMEOUT,
    )
    return svc.get(endpoint)[0]


def test_a_canary_whose_model_fails_on_valid_input_is_rolled_back(
    served: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    """A model raising ValueError on most schema-valid rows (an encoder that refuses the
    regions it never saw) must count against the canary, not be blamed on the clients."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from milepost.demo.data import CATEGORICAL, NUMERIC

    north = churn_frame[churn_frame.region == "north"].iloc[:1000]
    strict = ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(), CATEGORICAL)]
    )
    broken = Pipeline([("prep", strict), ("model", LogisticRegression(max_iter=500))])
    broken.fit(north[FEATURES], north["churned"])
    with milepost.start_run(experiment="serving"):
        mv = milepost.log_model(broken, "churn", input_example=north[FEATURES].head(3))
    server = served["start"](2)
    svc = served["rt"].serving
    with Load(server, served["rows"], clients=3) as load:
        load.answered(20)
        svc.canary(
            "churn-ep",
            mv.version,
            policy=milepost.serving.CanaryPolicy(
                steps=[50, 100], min_seconds=1, min_requests=20, max_p99_ratio=1000
            ),  # a generous latency budget: only its errors can stop it
        )
        spec = _verdict(svc, "churn-ep")
    assert spec.rollout.status == "rolled_back", spec.rollout.detail
    assert "error" in spec.rollout.detail
    assert [v.name for v in spec.variants] == ["churn-v1"]
    assert "canary.promote" not in _kinds(served)
    assert set(load.failures) == {"status 500"}  # the canary's model errors, nothing else
    assert load.variants[f"churn-v{mv.version}"] > 0  # some regions it knows were answered


def test_a_canary_on_a_tracking_endpoint_moves_production_when_it_completes(
    served: dict[str, Any],
) -> None:
    """`milepost serve`'s controller decides; the registry follows in the same transaction:
    the slow v3 is rolled back and recorded so, the healthy v2 becomes Production as it
    becomes the primary. Clients never see a failure."""
    rt = served["rt"]
    rt.serving.create("tracked", "churn")  # tracks Production of churn (v1)
    server = served["start"](2, "tracked")
    svc = rt.serving
    c = Client()

    def verdict() -> Any:
        return _verdict(svc, "tracked")

    with Load(server, served["rows"], clients=3) as load:
        load.answered(20)
        slow = svc.canary(
            "tracked",
            3,
            policy=milepost.serving.CanaryPolicy(
                steps=[50, 100], min_seconds=1, min_requests=20, max_p99_ratio=3
            ),
        )
        spec = verdict()
        assert spec.rollout.status == "rolled_back", spec.rollout.detail
        refused = c.get_promotion_request(slow.rollout.request_id)
        assert refused.status == "rolled_back" and "p99" in refused.gates[-1].message
        assert {v.version: v.stage for v in c.list_model_versions("churn")} == {
            1: "Production",
            2: "None",
            3: "None",
        }
        healthy = svc.canary(
            "tracked",
            2,
            policy=milepost.serving.CanaryPolicy(
                steps=[50, 100], min_seconds=1, min_requests=20, max_p99_ratio=1000
            ),
        )
        spec = verdict()
        assert spec.rollout.status == "succeeded", spec.rollout.detail
        wait_until(
            lambda: server.predict(served["rows"][:1]).json()["variant"] == "churn-v2",
            what="the new primary to answer",
        )
    assert sum(load.failures.values()) == 0, load.failures
    assert load.variants["churn-v3"] > 0 and load.variants["churn-v2"] > 0
    assert spec.primary.name == "churn-v2"
    assert {v.version: v.stage for v in c.list_model_versions("churn")} == {
        1: "Archived",
        2: "Production",
        3: "None",
    }
    done = c.get_promotion_request(healthy.rollout.request_id)
    assert done.status == "completed" and done.gates[-1].name == "canary on tracked"
    # the controller in `milepost serve` (another process) changed the stage with the route
    stage = c.list_audit_events(action="model_version.stage")[0]
    promote = c.list_audit_events(action="deploy.canary.promote")[0]
    assert stage.after["endpoint"] == "tracked" and abs(stage.seq - promote.seq) == 1
    assert c.get_model_history("churn")[-1].request_id == done.request_id
    report = c.verify_audit()
    assert report.ok, report.problems
