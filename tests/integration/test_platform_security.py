"""The platform server's security, against a real server with every route on it.

A walk over the published OpenAPI schema checks every route: no token is a 401 (only
``/health`` is open), a viewer is refused every write, and a route that declares a role
(``x-milepost-role``) refuses a token one role below it, before anything else (404s,
validation) is looked at. Then: expiry (an injected clock), revocation, a user's lost
role, the acting identity in the audit trail, malformed credentials, and no secret in
any log line or console output.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import milepost
from milepost.governance.tokens import ROLES, CachedAuthenticator
from milepost.server.api.auth import ROLE_KEY
from tests._server import platform_server, serve_app
from tests._wait import wait_until
from tests.integration.conftest import Endpoint

OPEN = {("get", "/api/v1/health")}
WRITES = {"post", "put", "patch", "delete"}


class Clock:
    """A clock the test moves (seconds since the epoch)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder(logging.Handler):
    """Every log record's formatted text (message, arguments, traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    """Captures every logger's records (uvicorn's access log included) for the module."""
    handler = Recorder()
    names = ["", "uvicorn", "uvicorn.access", "uvicorn.error", "milepost", "fastapi"]
    saved = {}
    for name in names:
        log = logging.getLogger(name)
        saved[name] = log.level
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for name in names:
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(saved[name])


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, recorder: Recorder
) -> Iterator[dict[str, Any]]:
    """A server over a fresh store, with a token of each role (admin: alice)."""
    home = tmp_path_factory.mktemp("security")
    rt = milepost.Runtime.open(home=str(home / ".milepost"), user="alice", server_max_upload_mb=1)
    tokens = {}
    _, tokens["admin"] = rt.tokens.create("admin", "admin")
    for role, user in (("viewer", "vic"), ("member", "bob"), ("approver", "apu")):
        _, tokens[role] = rt.tokens.create(role, role, user=user)
    with platform_server(rt) as url:
        yield {
            "rt": rt,
            "url": url,
            "tokens": tokens,
            "secrets": list(tokens.values()),
            "home": home,
        }
    rt.close()


def _client(platform: dict[str, Any], token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=platform["url"], headers=headers, timeout=30)


def _operations(platform: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    with _client(platform, platform["tokens"]["viewer"]) as http:
        schema = http.get("/api/v1/openapi.json").json()
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete", "head"}:
                found.append((method, path, operation))
    return found


def _concrete(path: str, operation: dict[str, Any]) -> str:
    """The path with a dummy value for each parameter (an int where one is expected)."""
    kinds = {
        p["name"]: p.get("schema", {}).get("type")
        for p in operation.get("parameters", [])
        if p.get("in") == "path"
    }
    return re.sub(
        r"\{([^}:]+)(?::path)?\}",
        lambda m: "1" if kinds.get(m.group(1)) == "integer" else "nothing-here",
        path,
    )


#: POST routes that change nothing and declare the viewer role on purpose (each one listed
#: here deliberately; every other write needs at least member).
READ_ONLY_WRITES = {
    # checks an uploaded export against itself; touches no store
    ("post", "/api/v1/audit/verify-export"),
}


def _below(role: str) -> str:
    return ROLES[ROLES.index(role) - 1]


def test_every_route_needs_a_token_and_the_role_it_declares(platform: dict[str, Any]) -> None:
    operations = _operations(platform)
    assert len(operations) >= 8, [f"{m} {p}" for m, p, _ in operations]
    refused: list[str] = []
    with (
        _client(platform) as anonymous,
        _client(platform, platform["tokens"]["viewer"]) as viewer,
        _client(platform, "mp_000000000000_" + "A" * 43) as forged,
    ):
        for method, path, operation in operations:
            url = _concrete(path, operation)
            label = f"{method.upper()} {path}"
            if (method, path) in OPEN:
                assert anonymous.request(method, url).status_code == 200, label
                continue
            for who, http in (("no token", anonymous), ("a forged token", forged)):
                answer = http.request(method, url)
                if answer.status_code != 401:
                    refused.append(f"{label} with {who}: {answer.status_code}")
                else:
                    body = answer.json()
                    assert body["code"] == "unauthenticated" and body["hint"], label
                    assert answer.headers["www-authenticate"] == "Bearer", label
            needed = operation.get(ROLE_KEY) or ("member" if method in WRITES else "viewer")
            if method in WRITES and (method, path) not in READ_ONLY_WRITES:
                answer = viewer.request(method, url)
                if answer.status_code != 403:
                    refused.append(f"{label} as viewer: {answer.status_code}")
            if needed != "viewer":
                below = _below(needed)
                with _client(platform, platform["tokens"][below]) as http:
                    answer = http.request(method, url)
                if answer.status_code != 403:
                    refused.append(f"{label} as {below} (needs {needed}): {answer.status_code}")
                else:
                    assert answer.json()["details"] == {"needed": needed, "held": below}
    assert refused == []


def test_token_and_role_routes_are_admin_only_and_audited_as_the_caller(
    platform: dict[str, Any],
) -> None:
    rt = platform["rt"]
    with _client(platform, platform["tokens"]["admin"]) as admin:
        made = admin.post("/api/v1/tokens", json={"name": "ci-x", "role": "member", "user": "cy"})
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        assert token["user"] == "cy" and token["created_by"] == "alice"
        assert made.json()["secret"].startswith(f"mp_{token['token_id']}_")
        listed = admin.get("/api/v1/tokens").json()["items"]
        assert token["token_id"] in [t["token_id"] for t in listed]
        assert all("secret" not in t and "secret_hash" not in t for t in listed)
        assert admin.get(f"/api/v1/tokens/{token['token_id']}").json()["name"] == "ci-x"
        granted = admin.post("/api/v1/roles", json={"user": "cy", "role": "approver"})
        assert granted.status_code == 201 and granted.json()["items"][0]["actor"] == "cy"
        assert admin.delete("/api/v1/roles/cy/approver").status_code == 204
        missing = admin.delete("/api/v1/roles/cy/approver")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        bad = admin.post("/api/v1/tokens", json={"name": "x", "role": "root"})
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_input"
        extra = admin.post("/api/v1/tokens", json={"name": "x", "secret": "mine"})
        assert extra.status_code == 400
    with _client(platform, platform["tokens"]["viewer"]) as viewer:
        roles = viewer.get("/api/v1/roles").json()["items"]
        assert ("alice", "admin") in [(g["actor"], g["role"]) for g in roles]
    events = rt.audit.list(object_type="token", object_id=token["token_id"])
    assert [(e.action, e.actor) for e in events] == [("token.create", "alice")]
    grants = rt.audit.list(object_type="role", object_id="cy:approver")
    assert sorted((e.action, e.actor) for e in grants) == [
        ("role.grant", "alice"), ("role.revoke", "alice"),
    ]  # fmt: skip


def test_whoami_is_the_tokens_identity(platform: dict[str, Any]) -> None:
    for role, user in (("viewer", "vic"), ("member", "bob"), ("approver", "apu")):
        with _client(platform, platform["tokens"][role]) as http:
            me = http.get("/api/v1/whoami").json()
        assert (me["user"], me["role"]) == (user, role)


def test_revoked_tokens_are_refused_from_the_next_request(platform: dict[str, Any]) -> None:
    rt = platform["rt"]
    _, secret = rt.tokens.create("soon-revoked", "approver", user="apu")
    with _client(platform, secret) as http, _client(platform, platform["tokens"]["admin"]) as admin:
        assert http.get("/api/v1/whoami").json()["role"] == "approver"
        revoked = admin.post("/api/v1/tokens/soon-revoked/revoke", json={"reason": "test"})
        assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
        answer = http.get("/api/v1/whoami")
        assert answer.status_code == 401 and "revoked" in answer.json()["message"]
        assert http.get("/api/v1/roles").status_code == 401


def test_expired_tokens_are_refused(platform: dict[str, Any]) -> None:
    rt = platform["rt"]
    service = rt.tokens
    clock = Clock(service.clock())
    saved = service.clock
    service.clock = clock
    try:
        _, secret = service.create("an-hour", "viewer", expires_in_days=1 / 24)
        with _client(platform, secret) as http:
            assert http.get("/api/v1/whoami").status_code == 200
            clock.now += 3600
            answer = http.get("/api/v1/whoami")
        assert answer.status_code == 401 and "expired" in answer.json()["message"]
    finally:
        service.clock = saved


def test_a_role_revoked_from_the_user_downgrades_the_token(platform: dict[str, Any]) -> None:
    rt = platform["rt"]
    _, secret = rt.tokens.create("dora", "approver", user="dora")
    with _client(platform, secret) as http, _client(platform, platform["tokens"]["admin"]) as admin:
        assert http.get("/api/v1/whoami").json()["role"] == "approver"
        assert admin.delete("/api/v1/roles/dora/approver").status_code == 204
        assert http.get("/api/v1/whoami").json()["role"] == "member"


@pytest.mark.parametrize(
    "value",
    [
        b"Bearer",
        b"Bearer   mp_",
        b"Basic YWxpY2U6cGFzc3dvcmQ=",
        b"bearer mp_short",
        b"Bearer mp_000000000000_" + b"A" * 43 + b" trailing",
        b"Bearer \xff\xfe\xfd",
        b"Bearer " + b"x" * 8000,
        b"Token abc def",
    ],
)
def test_malformed_authorization_headers_are_401(platform: dict[str, Any], value: bytes) -> None:
    with _client(platform) as http:
        answer = http.get("/api/v1/whoami", headers={"Authorization": value})
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "unauthenticated"


def test_no_secret_reaches_a_log_or_the_console(
    platform: dict[str, Any], recorder: Recorder, capfd: pytest.CaptureFixture[str]
) -> None:
    """Creating, using, revoking and failing with tokens logs no secret (nor its random
    part), whatever the level."""
    secrets = list(platform["secrets"])
    with _client(platform, platform["tokens"]["admin"]) as admin:
        made = admin.post("/api/v1/tokens", json={"name": "logged", "role": "member"}).json()
        secrets.append(made["secret"])
        with _client(platform, made["secret"]) as http:
            http.get("/api/v1/whoami")
            http.post("/api/v1/tokens", json={"name": "nope"})  # 403
        admin.post("/api/v1/tokens/logged/revoke")
        with _client(platform, made["secret"]) as http:
            http.get("/api/v1/whoami")  # 401: revoked
        forged = made["secret"][:-3] + "zzz"
        with _client(platform, forged) as http:
            http.get("/api/v1/whoami")
        secrets.append(forged)
    out, err = capfd.readouterr()
    text = "\n".join([*recorder.lines, out, err])
    for secret in secrets:
        random_part = secret[len("mp_") + 13 :]
        assert secret not in text and random_part not in text


def test_a_project_scoped_admin_token_cannot_administer(platform: dict[str, Any]) -> None:
    """It could otherwise mint itself an unscoped token."""
    _, scoped = platform["rt"].tokens.create("team-admin", "admin", project="team-a")
    with _client(platform, scoped) as http:
        assert http.get("/api/v1/whoami").json()["project"] == "team-a"
        for method, path, body in (
            ("POST", "/api/v1/tokens", {"name": "escape", "role": "admin"}),
            ("GET", "/api/v1/tokens", None),
            ("POST", "/api/v1/roles", {"user": "mallory", "role": "admin"}),
        ):
            answer = http.request(method, path, json=body)
            assert answer.status_code == 403, (path, answer.text)
            assert "limited to project 'team-a'" in answer.json()["message"]
    assert "escape" not in [t.name for t in platform["rt"].tokens.list()]


def test_answers_carry_security_headers(platform: dict[str, Any]) -> None:
    with _client(platform, platform["tokens"]["viewer"]) as http:
        for path in ("/api/v1/health", "/api/v1/whoami", "/api/v1/nothing-here", "/"):
            answer = http.get(path)
            assert answer.headers["x-frame-options"] == "DENY", path
            assert answer.headers["x-content-type-options"] == "nosniff", path
            assert answer.headers["referrer-policy"] == "same-origin", path
            assert answer.headers.get_list("x-frame-options") == ["DENY"], path


def test_the_audit_trail_and_authorship_carry_the_tokens_user(
    platform: dict[str, Any],
) -> None:
    rt = platform["rt"]
    with _client(platform, platform["tokens"]["member"]) as bob:  # user "bob"
        made = bob.post("/api/v1/experiments", json={"name": "bobs-experiment"})
        assert made.status_code == 201, made.text
        run = bob.post("/api/v1/runs", json={"experiment": "bobs-experiment"})
        assert run.status_code == 201, run.text
    experiment_id = str(made.json()["experiment_id"])
    events = rt.audit.list(object_type="experiment", object_id=experiment_id)
    assert [(e.action, e.actor) for e in events] == [("experiment.create", "bob")]
    assert rt.tracking.get_run(run.json()["run_id"]).user == "bob"
    assert rt.settings.actor() == "alice"  # the server's own identity is untouched


def _run_id(platform: dict[str, Any]) -> str:
    with _client(platform, platform["tokens"]["member"]) as http:
        answer = http.post("/api/v1/runs", json={"experiment": "uploads"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["run_id"])


@pytest.mark.parametrize(
    "path",
    [
        "%2e%2e/%2e%2e/outside.txt",
        "a/%2E%2E/%2E%2E/outside.txt",
        "..%2F..%2Foutside.txt",
        "%2Fetc%2Fpasswd",
        "a%5C..%5C..%5Coutside.txt",
        "a/%00/b.txt",
    ],
)
def test_artifact_paths_cannot_leave_the_run(platform: dict[str, Any], path: str) -> None:
    run_id = _run_id(platform)
    home = Path(platform["home"])
    with _client(platform, platform["tokens"]["member"]) as http:
        url = f"{platform['url']}/api/v1/runs/{run_id}/artifacts/{path}"
        put = http.put(httpx.URL(url), content=b"secret payload")
        assert put.status_code == 400, (path, put.status_code, put.text)
        assert put.json()["code"] == "invalid_input"
        got = http.get(httpx.URL(url))
        assert got.status_code in (400, 404), (path, got.status_code)
        assert b"secret payload" not in got.content
        assert http.get(f"/api/v1/runs/{run_id}/artifacts").json()["items"] == []
    assert not list(home.rglob("outside.txt"))


def test_oversized_uploads_are_413_and_store_nothing(platform: dict[str, Any]) -> None:
    run_id = _run_id(platform)
    limit = 1 << 20  # server_max_upload_mb=1
    spool = Path(platform["rt"].settings.home) / "tmp" / "uploads"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
        for _ in range(3):
            yield b"x" * (limit // 2)

    with _client(platform, platform["tokens"]["member"]) as http:
        base = f"/api/v1/runs/{run_id}/artifacts"
        declared = http.put(f"{base}/big.bin", content=b"x" * (limit + 1))
        assert declared.status_code == 413, declared.text
        assert declared.json()["code"] == "payload_too_large"
        streamed = http.put(f"{base}/streamed.bin", content=chunks())
        assert streamed.status_code == 413, streamed.text
        assert http.get(base).json()["items"] == []
        fits = http.put(f"{base}/fits.bin", content=b"x" * limit)
        assert fits.status_code == 201, fits.text
        assert [a["path"] for a in http.get(base).json()["items"]] == ["fits.bin"]
    assert not spool.exists() or list(spool.iterdir()) == []


# -- one identity everywhere: the feature and model servers take the same tokens ---------

FEATURE_REPO = """
from milepost.features import Field, OnDemandFeatureView

def with_tax(df):
    df["gross"] = df["net"] * 1.2
    return df

tax = OnDemandFeatureView(name="tax", sources=[], request_schema=[Field("net")],
                          schema=[Field("gross")], transform=with_tax)
"""


def test_the_feature_server_takes_api_tokens_and_forgets_a_revoked_one_within_the_ttl(
    tmp_path: Path,
) -> None:
    from milepost.features.api import FeatureStore
    from milepost.server.features import FeatureServer

    rt = milepost.configure(home=tmp_path / ".milepost", user="alice")
    (tmp_path / "features.py").write_text(FEATURE_REPO)
    store = FeatureStore(str(tmp_path / "features.py"))
    store.apply()
    _, viewer = rt.tokens.create("reader", "viewer", user="vic")
    clock = Clock(1000.0)
    authenticator = CachedAuthenticator(rt.tokens, ttl=5, clock=clock)
    lookups: list[str] = []
    real = rt.tokens.authenticate

    def counted(secret: str) -> Any:
        lookups.append(secret)
        return real(secret)

    rt.tokens.authenticate = counted  # type: ignore[method-assign]
    body = {"features": ["tax:gross"], "entities": [{"net": 10.0}]}
    app = FeatureServer(store, timeout=5, authenticator=authenticator)
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/health").status_code == 200  # stays open
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
            refused = http.post("/v1/features/online", json=body, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json()["code"] == "unauthenticated"
            assert refused.headers["www-authenticate"].startswith("Bearer")
        auth = {"Authorization": f"Bearer {viewer}"}
        for _ in range(3):
            answer = http.post("/v1/features/online", json=body, headers=auth)
            assert answer.status_code == 200 and answer.json()["values"] == {"gross": [12.0]}
        assert len(lookups) == 1  # one store read for three requests
        rt.tokens.revoke("reader")
        assert http.post("/v1/features/online", json=body, headers=auth).status_code == 200
        clock.now += 5  # the bound: auth_cache_seconds
        revoked = http.post("/v1/features/online", json=body, headers=auth)
        assert revoked.status_code == 401 and "revoked" in revoked.json()["message"]
    app._pool.shutdown(wait=False)


@pytest.mark.slow
def test_the_model_server_takes_api_tokens_for_feedback_and_pinning(
    make_endpoint: Callable[..., Endpoint],
) -> None:
    endpoint = make_endpoint()
    rt = milepost.get_runtime()
    _, member = rt.tokens.create("labeller", "member", user="bob")
    _, viewer = rt.tokens.create("watcher", "viewer", user="vic")
    _, gone = rt.tokens.create("gone", "member", user="bob")
    rt.tokens.revoke("gone")
    server = endpoint.start(serving_auth=True, auth_cache_seconds=0)
    rid = server.predict(endpoint.rows[:2]).json()["request_id"]
    labels = {"request_id": rid, "labels": [0, 1]}
    url = f"{server.url}/v1/endpoints/churn-ep"

    def feedback(token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(f"{url}/feedback", json=labels, headers=headers, timeout=30)

    assert feedback(None).status_code == 401
    assert feedback(gone).status_code == 401
    as_viewer = feedback(viewer)
    assert as_viewer.status_code == 403 and "member role" in as_viewer.json()["message"]
    assert rt.serving.store.feedback(rid) == {}
    assert feedback(member).json()["recorded"] == 2

    spec = rt.serving.blue_green("churn-ep", 2)  # v2 on standby: no traffic
    assert spec.variant("churn-v2").role == "standby"
    revision = rt.serving.get("churn-ep")[1]
    wait_until(
        lambda: httpx.get(url, timeout=5).json()["revision"] >= revision,
        what="the replica to pick up the standby variant",
        timeout=60,
    )

    def pin(token: str | None) -> httpx.Response:
        headers = {"X-Milepost-Variant": "churn-v2"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(
            f"{url}/predict", json={"rows": endpoint.rows[:1]}, headers=headers, timeout=30
        )

    assert pin(None).status_code == 403
    assert pin(viewer).status_code == 403
    assert pin(gone).status_code == 401
    pinned = pin(member)
    assert pinned.status_code == 200 and pinned.json()["variant"] == "churn-v2"
