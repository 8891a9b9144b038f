"""The tracking and artifact routes spoken to directly over HTTP: project scope, path
traversal, upload limits, the batched metric log and the answers' shapes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import milepost
from tests._server import platform_server


@pytest.fixture
def api(platform: dict[str, Any]) -> Iterator[httpx.Client]:
    """An HTTP client to the shared server with the admin token."""
    headers = {"Authorization": f"Bearer {platform['token']}"}
    with httpx.Client(base_url=f"{platform['url']}/api/v1", headers=headers) as http:
        yield http


def _token(platform: dict[str, Any], role: str, *, user: str, project: str | None = None) -> str:
    rt = platform["rt"]
    _, secret = rt.tokens.create(f"{user}-{role}-{project}", role, user=user, project=project)
    return str(secret)


def _as(platform: dict[str, Any], secret: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{platform['url']}/api/v1", headers={"Authorization": f"Bearer {secret}"}
    )


def test_errors_have_one_shape(api: httpx.Client, unique: str) -> None:
    missing = api.get(f"/experiments/{unique}")
    assert missing.status_code == 404
    body = missing.json()
    assert body["code"] == "not_found" and unique in body["message"] and body["hint"]
    assert api.post("/experiments", json={"name": unique, "bogus": 1}).status_code == 400
    assert api.get("/runs", params={"max_results": "many"}).status_code == 400
    assert api.get("/runs", params={"filter": "metrics.x >>> 1"}).json()["code"] == (
        "invalid_filter"
    )
    assert api.post("/metrics", json={"metrics": [["r", "k", "high", 0, 0]]}).status_code == 400


def test_batched_metric_log_and_run_batch(
    api: httpx.Client, platform: dict[str, Any], unique: str
) -> None:
    run = api.post("/runs", json={"experiment": unique}).json()
    rid = run["run_id"]
    rows = [[rid, "loss", float(i), 1000 + i, i] for i in range(100)]
    rows.append([rid, "odd", "NaN", 5, 0])
    rows.append(["f" * 32, "loss", 1.0, 5, 0])  # an unknown run: dropped, counted
    answer = api.post("/metrics", json={"metrics": rows})
    assert answer.status_code == 200 and answer.json() == {"dropped": 1}
    batch = api.post(
        f"/runs/{rid}/batch",
        json={"params": {"p": 1}, "tags": {"t": "x"}, "metrics": [["acc", 0.5, 7, 0]]},
    )
    assert batch.status_code == 200
    got = api.get(f"/runs/{rid}").json()
    assert got["params"] == {"p": "1"} and got["tags"] == {"t": "x"}
    assert got["metrics"]["loss"] == 99.0 and got["metrics"]["odd"] == "nan"
    assert got["metrics"]["acc"] == 0.5
    history = api.get(f"/runs/{rid}/metrics/loss").json()["items"]
    assert len(history) == 100 and history[3] == {
        "key": "loss",
        "value": 3.0,
        "step": 3,
        "timestamp": 1003,
    }
    assert api.post(f"/runs/{rid}/end", json={"status": "FINISHED"}).json()["status"] == (
        "FINISHED"
    )


def test_viewer_reads_but_cannot_write(platform: dict[str, Any], unique: str) -> None:
    with _as(platform, _token(platform, "viewer", user="vera")) as viewer:
        assert viewer.get("/experiments").status_code == 200
        refused = viewer.post("/experiments", json={"name": unique})
        assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
        assert viewer.post("/metrics", json={"metrics": []}).status_code == 403
    with httpx.Client(base_url=f"{platform['url']}/api/v1") as anonymous:
        assert anonymous.get("/runs").status_code == 401


def test_project_token_touches_only_its_experiment(
    platform: dict[str, Any], api: httpx.Client, unique: str
) -> None:
    other = api.post("/runs", json={"experiment": f"{unique}-other"}).json()
    secret = _token(platform, "member", user="pat", project=unique)
    with _as(platform, secret) as scoped:
        mine = scoped.post("/runs", json={"experiment": unique})
        assert mine.status_code == 201 and mine.json()["user"] == "pat"
        rid = mine.json()["run_id"]
        assert scoped.post(f"/runs/{rid}/params", json={"values": {"a": 1}}).status_code == 204
        assert [e["name"] for e in scoped.get("/experiments").json()["items"]] == [unique]
        assert [r["run_id"] for r in scoped.get("/runs").json()["items"]] == [rid]
        assert scoped.get(f"/experiments/{unique}").status_code == 200

        for method, path, body in [
            ("GET", f"/experiments/{unique}-other", None),
            ("POST", "/experiments", {"name": f"{unique}-new"}),
            ("POST", "/runs", {"experiment": f"{unique}-other"}),
            ("POST", "/runs", {}),  # the default experiment is another project
            ("GET", f"/runs/{other['run_id']}", None),
            ("POST", f"/runs/{other['run_id']}/tags", {"values": {"x": 1}}),
            ("POST", "/metrics", {"metrics": [[other["run_id"], "k", 1.0, 0, 0]]}),
            ("GET", "/runs", None),
            ("PATCH", f"/experiments/{unique}", {"name": f"{unique}-renamed"}),
            ("GET", f"/runs/{other['run_id']}/artifacts", None),
            ("PUT", f"/runs/{other['run_id']}/artifacts/a.txt", None),
        ]:
            params = (
                {"experiment": f"{unique}-other"} if path == "/runs" and method == "GET" else None
            )
            answer = scoped.request(method, path, json=body, params=params, content=None)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json()["details"]["project"] == unique
    # nothing was changed by the refused calls
    assert api.get(f"/runs/{other['run_id']}").json()["tags"] == {}


def test_upload_and_download_stream(api: httpx.Client, unique: str, tmp_path: Path) -> None:
    rid = api.post("/runs", json={"experiment": unique}).json()["run_id"]
    blob = os.urandom((1 << 20) * 2 + 5)

    def chunks() -> Iterator[bytes]:  # a streamed (chunked) request body
        for i in range(0, len(blob), 65536):
            yield blob[i : i + 65536]

    put = api.put(f"/runs/{rid}/artifacts/deep/dir/blob.bin", content=chunks())
    assert put.status_code == 201
    info = put.json()
    assert (info["path"], info["size"]) == ("deep/dir/blob.bin", len(blob))
    with api.stream("GET", f"/runs/{rid}/artifacts/deep/dir/blob.bin") as got:
        assert got.status_code == 200
        assert got.headers["x-milepost-digest"] == info["digest"]
        assert int(got.headers["content-length"]) == len(blob)
        assert b"".join(got.iter_bytes()) == blob
    listed = api.get(f"/runs/{rid}/artifacts", params={"path": "deep"}).json()["items"]
    assert [a["path"] for a in listed] == ["deep/dir/blob.bin"]


@pytest.mark.parametrize(
    "path",
    ["%2E%2E/secret.txt", "a/%2E%2E/%2E%2E/x", "a%5Cb.txt", "nul%00.txt", "/etc/passwd"],
)
def test_path_traversal_is_refused(api: httpx.Client, unique: str, path: str) -> None:
    rid = api.post("/runs", json={"experiment": unique}).json()["run_id"]
    url = f"{str(api.base_url).rstrip('/')}/runs/{rid}/artifacts/{path}"
    put = api.put(httpx.URL(url), content=b"x")
    assert put.status_code == 400, put.text
    assert (
        put.json()["code"] == "invalid_input" and "Refused artifact path" in put.json()["message"]
    )
    assert api.get(httpx.URL(url)).status_code == 400
    assert api.get(f"/runs/{rid}/artifacts").json()["items"] == []


def test_oversized_upload_is_refused_and_nothing_stored(tmp_path: Path) -> None:
    opened = milepost.Runtime.open(
        home=str(tmp_path / ".milepost"), user="ulla", server_max_upload_mb=1
    )
    with opened as rt:
        _, secret = rt.tokens.create("up", "admin")
        limit = 1 << 20
        with (
            platform_server(rt) as url,
            httpx.Client(
                base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {secret}"}
            ) as http,
        ):
            rid = http.post("/runs", json={"experiment": "uploads"}).json()["run_id"]
            declared = http.put(f"/runs/{rid}/artifacts/big.bin", content=b"x" * (limit + 1))
            assert declared.status_code == 413
            assert declared.json()["code"] == "payload_too_large"

            def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
                for _ in range(20):
                    yield b"y" * 65536 * 2

            streamed = http.put(f"/runs/{rid}/artifacts/big2.bin", content=chunks())
            assert streamed.status_code == 413
            assert http.get(f"/runs/{rid}/artifacts").json()["items"] == []
            fits = http.put(f"/runs/{rid}/artifacts/ok.bin", content=b"z" * limit)
            assert fits.status_code == 201
        spool = tmp_path / ".milepost" / "tmp" / "uploads"
        assert list(spool.iterdir()) == []  # no spooled file left behind
