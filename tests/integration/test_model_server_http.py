"""The model server's HTTP surface under hostile use: feedback, credentials, pinning, routes.

Real `milepost serve` processes on 127.0.0.1, driven with httpx.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import milepost
from milepost.serving.logger import new_request_id
from tests._wait import wait_until
from tests.integration.conftest import Endpoint

pytestmark = pytest.mark.slow

TOKEN = "7f1c0e5b9a2d4c6e8f0a1b3c5d7e9f11"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _feedback(url: str, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    kwargs: dict[str, Any] = (
        {"content": payload} if isinstance(payload, bytes) else {"json": payload}
    )
    return httpx.post(
        f"{url}/v1/endpoints/churn-ep/feedback", headers=headers or {}, timeout=30, **kwargs
    )


def _head_only(url: str, request: bytes) -> bytes:
    """Send a request's headers and no body; what the server answers (it must not wait)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def _wait_for_revision(url: str, revision: int) -> None:
    wait_until(
        lambda: httpx.get(f"{url}/v1/endpoints/churn-ep", timeout=5).json()["revision"] >= revision,
        what=f"the replica to pick up the new routing (revision {revision})",
        timeout=60,  # a new variant is loaded first: over 15 s on a loaded 2-core machine
    )


def test_feedback_needs_the_token_when_the_server_has_one(
    make_endpoint: Callable[..., Endpoint],
) -> None:
    endpoint = make_endpoint(serving_token=TOKEN)
    server = endpoint.start()
    rid = server.predict(endpoint.rows[:3]).json()["request_id"]
    labels = {"request_id": rid, "labels": [0, 1, 0]}
    missing = _feedback(server.url, labels)
    assert missing.status_code == 401 and "no Authorization header" in missing.json()["message"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = _feedback(server.url, labels, {"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and "does not carry it" in wrong.json()["message"]
    for value in (TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"):
        assert _feedback(server.url, labels, {"Authorization": value}).status_code == 401
    assert milepost.get_runtime().serving.store.feedback(rid) == {}
    # refused before its body is read
    early = _head_only(
        server.url,
        b"POST /v1/endpoints/churn-ep/feedback HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n",
    )
    assert early.startswith(b"HTTP/1.1 401"), early
    assert _feedback(server.url, labels, AUTH).json()["recorded"] == 3


def test_feedback_is_for_logged_requests_bounded_and_never_overwrites(
    make_endpoint: Callable[..., Endpoint],
) -> None:
    endpoint = make_endpoint()
    server = endpoint.start()
    rid = server.predict(endpoint.rows[:3]).json()["request_id"]
    labels = {"request_id": rid, "labels": [0, 1, 0]}

    # a request this endpoint answered and logged
    for unknown in (new_request_id(), uuid.uuid4().hex, "abc", "x" * 10_000):
        r = _feedback(server.url, {"request_id": unknown, "label": 1})
        assert r.status_code == 404, (unknown, r.text)
        assert "no logged prediction" in r.json()["message"]

    # one label per predicted row, bounded per call
    two = _feedback(server.url, {"request_id": rid, "labels": [0, 1]})
    assert two.status_code == 400 and "predicted 3 row(s), but 2 label(s)" in two.json()["message"]
    many = _feedback(server.url, {"request_id": rid, "labels": [0] * 1001})
    assert many.status_code == 413 and "limit is 1000" in many.json()["message"]
    big = _feedback(server.url, {"request_id": rid, "labels": ["x" * (2 << 20)] * 3})
    assert big.status_code == 413 and "1 MiB" in big.json()["message"]
    # a body declared too large is refused at once, without waiting for it
    for action, size in (("feedback", 2 << 20), ("predict", 50 << 20)):
        early = _head_only(
            server.url,
            f"POST /v1/endpoints/churn-ep/{action} HTTP/1.1\r\nHost: t\r\n"
            f"Content-Length: {size}\r\n\r\n".encode(),
        )
        assert early.startswith(b"HTTP/1.1 413"), early
        assert b"connection: close" in early.lower()
    for bad, text in (
        ({"request_id": rid, "labels": [0, None, 1]}, "Label 1 is null"),
        ({"request_id": rid, "lables": [0, 1, 0]}, "Unknown feedback field 'lables'"),
        ({"request_id": rid, "labels": [1], "offset": -1}, "'offset' must be"),
        ({"request_id": rid, "labels": [1, 1], "offset": 2}, "rows 2..3"),
    ):
        r = _feedback(server.url, bad)
        assert r.status_code == 400 and text in r.json()["message"], r.text

    # recorded once; the same labels again are a no-op; different ones are refused whole
    first = _feedback(server.url, labels)
    assert first.status_code == 200, first.text
    assert first.json() == {"request_id": rid, "recorded": 3, "unchanged": 0}
    again = _feedback(server.url, labels)
    assert again.json() == {"request_id": rid, "recorded": 0, "unchanged": 3}
    clash = _feedback(server.url, {"request_id": rid, "labels": [1, 1, 1]})
    assert clash.status_code == 409, clash.text
    assert "row 0 has 0, not 1" in clash.json()["message"]
    partial = _feedback(server.url, {"request_id": rid, "labels": [1, 0], "offset": 1})
    assert partial.json() == {"request_id": rid, "recorded": 0, "unchanged": 2}
    assert milepost.get_runtime().serving.store.feedback(rid) == {0: 0, 1: 1, 2: 0}


def test_a_large_feedback_write_never_holds_up_predictions(
    make_endpoint: Callable[..., Endpoint], postgres_schema: str
) -> None:
    endpoint = make_endpoint(metadata_uri=postgres_schema)
    server = endpoint.start()
    rows = endpoint.rows[:1000]
    rid = server.predict(rows).json()["request_id"]
    admin = sa.create_engine(postgres_schema, poolclass=sa.pool.NullPool)
    done = threading.Event()
    result: dict[str, httpx.Response] = {}

    def send_feedback() -> None:
        result["feedback"] = _feedback(server.url, {"request_id": rid, "labels": [1] * 1000})
        done.set()

    with admin.connect() as lock, admin.connect() as watch:
        # the feedback table is locked: the server's write waits on it
        lock.execute(sa.text("LOCK TABLE feedback IN ACCESS EXCLUSIVE MODE"))
        sender = threading.Thread(target=send_feedback)
        sender.start()

        def waiting() -> bool:
            assert not done.is_set(), result  # it never waited on the lock
            count = watch.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query ILIKE '%INSERT INTO%feedback%'"
                )
            ).scalar()
            watch.rollback()  # pg_stat_activity is a snapshot per transaction
            return bool(count)

        wait_until(waiting, what="the feedback write to wait on the locked table")
        # the write is in flight: the replica still answers at once
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
        assert server.predict(endpoint.rows[:2]).status_code == 200
        assert not done.is_set()  # ... before the feedback completes
        lock.rollback()  # release the table
        sender.join(timeout=30)
    admin.dispose()
    assert result["feedback"].status_code == 200, result["feedback"].text
    assert result["feedback"].json()["recorded"] == 1000


def test_pinning_a_variant_without_traffic_needs_the_token(
    make_endpoint: Callable[..., Endpoint],
) -> None:
    endpoint = make_endpoint()
    open_server = endpoint.start()
    guarded = endpoint.start(serving_token=TOKEN)
    svc = milepost.get_runtime().serving
    spec = svc.blue_green("churn-ep", 2)  # v2 loaded on standby, no traffic
    assert spec.variant("churn-v2").role == "standby"
    revision = svc.get("churn-ep")[1]
    for server in (open_server, guarded):
        _wait_for_revision(server.url, revision)

    def pin(server: Any, variant: str | bytes, headers: dict[str, Any] | None = None) -> Any:
        return httpx.post(
            f"{server.url}/v1/endpoints/churn-ep/predict",
            json={"rows": endpoint.rows[:1]},
            headers={"X-Milepost-Variant": variant, **(headers or {})},
            timeout=10,
        )

    # a variant that takes traffic: anyone
    assert pin(open_server, "churn-v1").json()["variant"] == "churn-v1"
    # one that does not: refused without a credential, whatever the server
    refused = pin(open_server, "churn-v2")
    assert refused.status_code == 403, refused.text
    assert "none configured" in refused.json()["message"]
    assert pin(open_server, "churn-v2", AUTH).status_code == 403
    anonymous = pin(guarded, "churn-v2")
    assert anonymous.status_code == 403 and "needs the serving token" in anonymous.json()["message"]
    assert pin(guarded, "churn-v2", {"Authorization": "Bearer nope"}).status_code == 401
    allowed = pin(guarded, "churn-v2", AUTH)
    assert allowed.status_code == 200 and allowed.json()["variant"] == "churn-v2"
    assert pin(guarded, "churn-v9", AUTH).status_code == 404
    # a shadow takes no traffic either
    svc.rollback("churn-ep")
    svc.shadow("churn-ep", 2)
    revision = svc.get("churn-ep")[1]
    _wait_for_revision(guarded.url, revision)
    assert pin(guarded, "churn-v2").status_code == 403
    assert pin(guarded, "churn-v2", AUTH).json()["variant"] == "churn-v2"


def test_headers_that_are_not_utf8_are_a_400(make_endpoint: Callable[..., Endpoint]) -> None:
    endpoint = make_endpoint(serving_token=TOKEN)
    guarded = endpoint.start()
    for headers in (
        {"X-Milepost-Variant": b"churn-\xff\xfe"},
        {"X-Milepost-Variant": b"churn-v1", "Authorization": b"Bearer \xff" + TOKEN.encode()},
    ):
        r = httpx.post(
            f"{guarded.url}/v1/endpoints/churn-ep/predict",
            json={"rows": endpoint.rows[:1]},
            headers=headers,
            timeout=10,
        )
        assert r.status_code == 400 and "not UTF-8" in r.json()["message"], r.text
    r = httpx.post(
        f"{guarded.url}/v1/endpoints/churn-ep/feedback",
        json={"request_id": new_request_id(), "label": 1},
        headers={"Authorization": b"Bearer \xe9t\xe9"},
        timeout=10,
    )
    assert r.status_code == 400 and "authorization header is not UTF-8" in r.json()["message"]
    # headers Milepost does not read are not its business
    r = httpx.post(
        f"{guarded.url}/v1/endpoints/churn-ep/predict",
        json={"rows": endpoint.rows[:1]},
        headers={"User-Agent": b"\xff\xfe"},
        timeout=10,
    )
    assert r.status_code == 200


def test_wrong_methods_are_405_and_unknown_routes_404(
    make_endpoint: Callable[..., Endpoint],
) -> None:
    endpoint = make_endpoint()
    server = endpoint.start()
    base = f"{server.url}/v1/endpoints/churn-ep"
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        for action in ("predict", "explain", "feedback"):
            r = httpx.request(method, f"{base}/{action}", timeout=5)
            assert r.status_code == 405, (method, action, r.text)
            assert r.headers["allow"] == "POST"
            message = r.json()["message"]
            assert method in message and "POST" in message, message
    for path in ("/health", "/ready", "/metrics", "/v1/endpoints/churn-ep"):
        r = httpx.post(f"{server.url}{path}", json={}, timeout=5)
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", (path, r.text)
        assert httpx.head(f"{server.url}{path}", timeout=5).status_code == 200
    other = httpx.post(
        f"{server.url}/v1/endpoints/other/predict", json={"rows": endpoint.rows[:1]}, timeout=5
    )
    assert other.status_code == 404
    assert other.json()["message"] == (
        "This server serves endpoint 'churn-ep'; there is no endpoint 'other' here."
    )
    nope = httpx.get(f"{base}/nope", timeout=5)
    assert nope.status_code == 404 and "has no route '/nope'" in nope.json()["message"]
    assert f"POST {'/v1/endpoints/churn-ep'}/predict" in nope.json()["hint"]
    prefix = httpx.post(f"{base}x/predict", json={"rows": endpoint.rows[:1]}, timeout=5)
    assert prefix.status_code == 404 and "'churn-epx'" in prefix.json()["message"]
    assert httpx.get(f"{server.url}/nowhere", timeout=5).status_code == 404
    assert server.predict(endpoint.rows[:1]).status_code == 200


def test_the_fast_path_answers_as_the_model_and_refuses_naming_the_column(
    make_endpoint: Callable[..., Endpoint],
) -> None:
    """Rows go from JSON straight into NumPy for the ONNX twin; a row that does not fit
    (missing, null, wrong type, out of range) gets the 400 of the general path."""
    import numpy as np
    import pandas as pd

    endpoint = make_endpoint()
    server = endpoint.start()
    native = milepost.get_runtime().models.load("models:/churn/1")
    for rows in (endpoint.rows[:1], endpoint.rows[1:6]):
        r = server.predict(rows)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {
            "request_id",
            "endpoint",
            "variant",
            "model",
            "predictions",
            "probabilities",
        }
        frame = pd.DataFrame(rows)
        assert body["predictions"] == native.predict(frame).tolist()
        np.testing.assert_allclose(body["probabilities"], native.predict_proba(frame), atol=1e-5)
    row = endpoint.rows[0]
    missing = {k: v for k, v in row.items() if k != "age"}
    for bad, text in (
        (missing, "Row 1 is missing column 'age'"),
        ({**row, "age": "forty"}, "column 'age' is str 'forty'"),
        ({**row, "age": True}, "column 'age' is bool True"),
        ({**row, "age": None}, "column 'age' is null"),
        ({**row, "age": 2**63}, "column 'age' is 9223372036854775808, outside the 64-bit"),
        ({**row, "plan": 7}, "column 'plan' is int 7"),
    ):
        r = server.predict([row, bad])
        assert r.status_code == 400, (bad, r.text)
        answer = r.json()
        assert answer["code"] == "invalid_input" and text in answer["message"], answer
        if bad is missing:
            assert "The model expects: " in answer["hint"]
