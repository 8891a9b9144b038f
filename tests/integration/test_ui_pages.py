"""The web UI over a real server: every page answers with its content, login and logout,
CSRF and roles on every form.

One small state (runs with metric histories, datasets, two model versions, a pending
promotion, an endpoint with a canary, a monitor with results) is built once per module by
:func:`build_state`, which the browser test reuses; pages are fetched with httpx from
``tests._server.platform_server``.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import milepost
from milepost._actor import acting_as
from milepost.demo.data import customer_suite
from milepost.features import DatasetSource, Entity, FeatureView, Field
from milepost.features.repo import Definitions
from milepost.serving import CanaryPolicy
from milepost.serving.logger import PredictionLogger, new_request_id
from tests._server import platform_server
from tests.contract.conftest import FEATURES

EXPERIMENT = "ui-churn"
MODEL = "churn"
ENDPOINT = "churn-ep"
MONITOR = "churn-drift"
CUSTOMER = Entity("customer", join_keys=["customer_id"])
ACTIVITY = FeatureView(
    name="customer_activity",
    entity=CUSTOMER,
    source=DatasetSource("customers"),
    timestamp_field="event_timestamp",
    ttl=timedelta(days=30),
    schema=[Field("monthly_spend"), Field("support_tickets", "int")],
)


@dataclass
class UiState:
    """What :func:`build_state` made: the runtime, tokens per role and ids."""

    rt: milepost.Runtime
    tokens: dict[str, str]
    runs: list[str]
    experiment_id: int
    home: Path


def build_state(home: Path, churn_models: dict[str, Any], churn_frame: pd.DataFrame) -> UiState:
    """A small platform: alice (admin) logged three runs and two model versions; bob
    is an approver, vera a viewer, mo a member."""
    rt = milepost.Runtime.open(home=str(home / ".milepost"), user="alice")
    tokens = {"alice": rt.tokens.create("ui-admin", "admin")[1]}
    for user, role in (("bob", "approver"), ("vera", "viewer"), ("mo", "member")):
        tokens[user] = rt.tokens.create(f"ui-{user}", role, user=user)[1]
    t = rt.tracking
    experiment = t.create_experiment(EXPERIMENT, description="runs for the UI tests")
    customers = rt.data.register("customers", churn_frame.head(500), description="snapshot")
    runs = []
    for i, (name, c) in enumerate((("logreg", 0.5), ("logreg-wide", 2.0), ("weak", 0.0))):
        run = t.start_run(experiment=EXPERIMENT, run_name=name, tags={"team": "ui"})
        t.log_params(run.run_id, {"C": c, "model": name})
        for step in range(20):
            t.log_metric(run.run_id, "loss", 1.0 / (step + 1 + i), step=step)
        t.log_metric(run.run_id, "roc_auc", 0.7 + i / 10)
        t.log_bytes(run.run_id, b'{"tp": 3}', "eval/confusion.json")
        rt.data.log_input(run.run_id, customers, role="train")
        t.flush()
        t.end_run(run.run_id, "FINISHED")
        runs.append(run.run_id)
    rt.data.validate(customers, customer_suite(reference=customers.ref))
    rt.features.apply(Definitions.of([CUSTOMER, ACTIVITY]))
    models = rt.models
    example = churn_frame[FEATURES].head(3)
    models.log_model(
        runs[0],
        churn_models["good"],
        name=MODEL,
        input_example=example,
        training_data=churn_frame[FEATURES].head(1000),
    )
    models.log_model(runs[2], churn_models["weak"], name=MODEL, input_example=example)
    models.log_model(runs[1], churn_models["good"], name=MODEL, input_example=example)
    client = milepost.Client(rt)
    client.promote(MODEL, 1, "Production", reason="the baseline")
    client.set_promotion_policy(MODEL, {"production": [{"kind": "approval", "role": "approver"}]})
    rt.serving.create(ENDPOINT, MODEL, version=1)
    _serve_and_monitor(rt, churn_frame)
    return UiState(rt, tokens, runs, experiment.experiment_id, home)


def _serve_and_monitor(rt: milepost.Runtime, frame: pd.DataFrame) -> None:
    """Log answers of churn v1 as the model server would (the second half shifted), and
    run a drift monitor over each half: two points per feature, one breach."""
    logger = PredictionLogger(
        ENDPOINT, rt.settings.home / "predictions", rt.serving.store, interval=3600
    )
    now = int(time.time() * 1000)
    rows = frame[FEATURES].head(400).to_dict("records")
    for i, logged in enumerate(rows):
        at = now - 3_000_000 + i * 5000 if i < 200 else now - 1_000_000 + (i - 200) * 4000
        row = logged if i < 200 else {**logged, "monthly_spend": logged["monthly_spend"] * 3}
        logger.append(
            {
                "request_id": new_request_id(at),
                "row": 0,
                "ts": at,
                "endpoint": ENDPOINT,
                "variant": "churn-v1",
                "model": MODEL,
                "version": 1,
                "role": "primary",
                "key": str(i),
                "features": json.dumps(row, default=str),
                "prediction": json.dumps(i % 2),
                "latency_ms": 2.0 + i % 7,
                "status": "ok" if i % 50 else "error",
                "error": None if i % 50 else "model failed",
                "probabilities": None,
            }
        )
    logger.close()
    milepost.Client(rt).create_monitor(
        MONITOR, endpoint=ENDPOINT, checks=["feature_drift"], window="20m"
    )
    rt.monitors.run(MONITOR, now=now - 1_500_000)
    rt.monitors.run(MONITOR, now=now)


@pytest.fixture(scope="module")
def state(
    tmp_path_factory: pytest.TempPathFactory,
    churn_models: dict[str, Any],
    churn_frame: pd.DataFrame,
) -> Iterator[UiState]:
    built = build_state(tmp_path_factory.mktemp("ui"), churn_models, churn_frame)
    yield built
    built.rt.close()


@pytest.fixture(scope="module")
def url(state: UiState) -> Iterator[str]:
    with platform_server(state.rt) as base:
        yield base


@contextlib.contextmanager
def login(url: str, token: str) -> Iterator[httpx.Client]:
    """A browser-like client logged in with ``token`` through the login form."""
    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as http:
        form = http.get("/login")
        assert form.status_code == 200
        nonce = _field(form.text, "csrf")
        answer = http.post("/login", data={"token": token, "csrf": nonce, "next": "/experiments"})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/experiments"
        yield http


def _field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


def csrf_of(http: httpx.Client, path: str = "/experiments") -> str:
    return _field(http.get(path).text, "csrf")


@pytest.fixture(scope="module")
def admin(url: str, state: UiState) -> Iterator[httpx.Client]:
    with login(url, state.tokens["alice"]) as http:
        yield http


# -- login, logout, sessions ----------------------------------------------------------


def test_pages_need_a_login_and_the_login_form_posts_the_token(url: str, state: UiState) -> None:
    with httpx.Client(base_url=url) as anonymous:
        page = anonymous.get(f"/experiments/{state.experiment_id}?filter=x")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=")
        form = anonymous.get("/login")
        assert 'type="password"' in form.text and 'method="post"' in form.text
        cookie = form.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        wrong = anonymous.post(
            "/login", data={"token": "mp_not-a-token", "csrf": _field(form.text, "csrf")}
        )
        assert wrong.status_code == 401 and "Log in" in wrong.text
        assert "milepost_session" not in wrong.headers.get("set-cookie", "")
    with login(url, state.tokens["vera"]) as http:
        assert http.cookies.get("milepost_session") == state.tokens["vera"]
        page = http.get("/experiments")
        assert page.status_code == 200 and EXPERIMENT in page.text
        assert "vera · viewer" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        out = http.post("/logout", data={"csrf": _field(page.text, "csrf")})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert "milepost_session" not in http.cookies
        assert http.get("/experiments").status_code == 303


def test_the_login_form_refuses_a_post_without_its_csrf_cookie(url: str, state: UiState) -> None:
    with httpx.Client(base_url=url) as http:
        answer = http.post("/login", data={"token": state.tokens["alice"], "csrf": "forged"})
        assert answer.status_code == 403
        assert "milepost_session" not in answer.headers.get("set-cookie", "")


def test_a_next_target_off_this_server_goes_home(url: str, state: UiState) -> None:
    with httpx.Client(base_url=url) as http:
        nonce = _field(http.get("/login").text, "csrf")
        answer = http.post(
            "/login",
            data={"token": state.tokens["vera"], "csrf": nonce, "next": "//evil.example/x"},
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_a_revoked_token_ends_the_session(url: str, state: UiState) -> None:
    token, secret = state.rt.tokens.create("short-lived", "viewer", user="vera")
    with login(url, secret) as http:
        assert http.get("/experiments").status_code == 200
        state.rt.tokens.revoke(token.token_id)
        again = http.get("/experiments")
        assert again.status_code == 303 and "why=ended" in again.headers["location"]
        assert "Your session ended" in http.get(again.headers["location"]).text
    with httpx.Client(base_url=url) as anonymous:  # no text from the URL on the page
        assert "call us" not in anonymous.get("/login?why=call+us").text


def test_the_api_ignores_the_session_cookie(url: str, admin: httpx.Client) -> None:
    assert admin.get("/api/v1/whoami").status_code == 401


def test_posts_without_the_sessions_csrf_token_are_refused(admin: httpx.Client) -> None:
    refused = admin.post("/logout", data={"csrf": "0" * 64})
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert admin.post("/logout").status_code == 403
    assert admin.get("/experiments").status_code == 200  # still logged in


def test_without_auth_no_login_is_needed(state: UiState) -> None:
    with platform_server(state.rt, auth=False) as base, httpx.Client(base_url=base) as http:
        page = http.get("/experiments")
        assert page.status_code == 200 and EXPERIMENT in page.text
        assert http.get("/login").status_code == 303


# -- experiments and runs -------------------------------------------------------------


def test_experiments_and_the_runs_table(admin: httpx.Client, state: UiState) -> None:
    page = admin.get("/experiments")
    assert f'href="/experiments/{state.experiment_id}"' in page.text
    table = admin.get(f"/experiments/{state.experiment_id}")
    assert table.status_code == 200
    for run_id in state.runs:
        assert f'href="/runs/{run_id}"' in table.text
    assert "roc_auc" in table.text and "loss" in table.text


def test_the_runs_table_filters_sorts_and_pages_on_the_server(
    admin: httpx.Client, state: UiState
) -> None:
    base = f"/experiments/{state.experiment_id}"
    filtered = admin.get(base, params={"filter": "params.model = 'weak'"})
    assert f"/runs/{state.runs[2]}" in filtered.text
    assert f"/runs/{state.runs[0]}" not in filtered.text
    ordered = admin.get(base, params={"order_by": "metrics.roc_auc ASC"})
    positions = [ordered.text.index(f'href="/runs/{r}"') for r in state.runs]
    assert positions == sorted(positions)
    flipped = admin.get(base, params={"order_by": "metrics.roc_auc DESC"})
    positions = [flipped.text.index(f'href="/runs/{r}"') for r in state.runs]
    assert positions == sorted(positions, reverse=True)
    first = admin.get(base, params={"size": 2, "order_by": "metrics.roc_auc ASC"})
    assert first.text.count('name="run" value=') == 2
    following = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert following, "a next-page link"
    second = admin.get(following.group(1).replace("&amp;", "&"))
    assert second.text.count('name="run" value=') == 1
    assert f"/runs/{state.runs[2]}" in second.text and "page 2" in second.text


def test_a_malformed_filter_is_shown_next_to_the_box(admin: httpx.Client, state: UiState) -> None:
    page = admin.get(
        f"/experiments/{state.experiment_id}", params={"filter": "metrics.roc_auc >> 1"}
    )
    assert page.status_code == 400
    assert 'role="alert"' in page.text and "metrics.roc_auc &gt;&gt; 1" in page.text


def test_the_run_page(admin: httpx.Client, state: UiState) -> None:
    page = admin.get(f"/runs/{state.runs[0]}")
    assert page.status_code == 200
    text = page.text
    assert '<svg class="chart"' in text and 'data-series="loss"' in text
    path = re.search(r'data-series="loss" d="([^"]+)"', text)
    assert path and path.group(1).count("L") == 19  # 20 steps: one move, 19 lines
    assert "eval/confusion.json" in text and "customers@1" in text
    assert "Python" in text and ">C<" in text
    download = admin.get(f"/runs/{state.runs[0]}/artifacts/eval/confusion.json")
    assert download.status_code == 200 and download.content == b'{"tp": 3}'
    assert download.headers["content-disposition"].startswith("attachment")
    missing = admin.get(f"/runs/{state.runs[0]}/artifacts/../../etc/passwd")
    assert missing.status_code in (400, 404)
    assert admin.get("/runs/" + "0" * 32).status_code == 404


def test_compare_runs(admin: httpx.Client, state: UiState) -> None:
    page = admin.get("/compare", params=[("run", r) for r in state.runs])
    assert page.status_code == 200
    assert page.text.count('data-series="') >= 3  # three loss lines overlaid
    assert 'class="differs"' in page.text
    assert admin.get("/compare").status_code == 400


# -- registry, deployments, monitoring, catalogue ---------------------------------------


def test_every_page_answers_with_its_content(admin: httpx.Client, state: UiState) -> None:
    expected = {
        "/models": ["churn", "v1"],
        f"/models/{MODEL}": ["Stage history", "Production", "the baseline"],
        "/approvals": ["Waiting for approval"],
        "/deployments": [ENDPOINT, "churn-v1"],
        f"/deployments/{ENDPOINT}": ["churn-v1", "p99 latency (ms)", "create"],
        "/monitoring": [MONITOR, "feature_drift"],
        f"/monitoring/{MONITOR}": ['<svg class="chart"', "monthly_spend"],
        "/data": ["customers"],
        "/data/customers": ["monthly_spend", "Validation results", "passed"],
        "/features": ["customer_activity", "v1", "monthly_spend"],
        "/lineage": ["Start from"],
        f"/lineage?ref=models:/{MODEL}/1": ['class="lineage"', "customers"],
        "/audit": ["model_version.register", "alice"],
        "/audit?action=model_version.*": ["model_version.register"],
        "/audit?actor=bob": ["No events"],
    }
    for path, needles in expected.items():
        page = admin.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        for needle in needles:
            assert needle in page.text, (path, needle)


def test_a_model_with_a_policy_and_no_version_yet(admin: httpx.Client, state: UiState) -> None:
    """A policy set before the first run creates the model: its page says it has no
    versions instead of linking to the lineage of version None."""
    state.rt.promotion.set_policy("newcomer", {"production": [{"kind": "approval"}]})
    page = admin.get("/models/newcomer")
    assert page.status_code == 200
    assert "no versions yet" in page.text and "approval" in page.text
    assert "/None" not in page.text
    assert "newcomer" in admin.get("/models").text


def _pending(state: UiState, version: int) -> str:
    with acting_as("alice"):
        req = milepost.Client(state.rt).promote(MODEL, version, "Production", reason="better")
    assert req.status == "pending_approval"
    return req.request_id


def test_approvals_four_eyes_and_roles(url: str, state: UiState, admin: httpx.Client) -> None:
    request_id = _pending(state, 2)
    action = f"/promotions/{request_id}/approve"
    for user in ("vera", "mo"):  # a viewer and a member: no button, and refused anyway
        with login(url, state.tokens[user]) as http:
            page = http.get("/approvals")
            assert request_id in page.text and action not in page.text
            refused = http.post(action, data={"csrf": _field(page.text, "csrf")})
            assert refused.status_code == 403 and "needs the approver role" in refused.text
    page = admin.get("/approvals")
    assert action in page.text  # an admin may approve, but not their own request
    own = admin.post(action, data={"csrf": _field(page.text, "csrf")})
    assert own.status_code == 403 and "Refused" in own.text
    assert state.rt.promotion.get_request(request_id).status == "pending_approval"
    with login(url, state.tokens["bob"]) as bob:
        forged = bob.post(action, data={"csrf": _field(page.text, "csrf")})  # alice's token
        assert forged.status_code == 403 and "CSRF" in forged.text
        page = bob.get("/approvals")
        done = bob.post(action, data={"csrf": _field(page.text, "csrf"), "reason": "lgtm"})
        assert done.status_code == 303
        assert done.headers["location"] == f"/promotions/{request_id}?done=approved"
        shown = bob.get(done.headers["location"])
        assert "You approved this request" in shown.text and "lgtm" in shown.text
    req = state.rt.promotion.get_request(request_id)
    assert req.decided_by == "bob" and req.status != "pending_approval"
    assert state.rt.models.get_model(MODEL).stages["Production"] == [2]
    history = admin.get(f"/models/{MODEL}").text
    assert "by bob" in history


def test_rejecting_a_promotion(url: str, state: UiState) -> None:
    request_id = _pending(state, 3)
    with login(url, state.tokens["bob"]) as bob:
        page = bob.get(f"/promotions/{request_id}")
        assert f"/promotions/{request_id}/reject" in page.text
        done = bob.post(
            f"/promotions/{request_id}/reject",
            data={"csrf": _field(page.text, "csrf"), "reason": "not yet"},
        )
        assert done.status_code == 303
        again = bob.post(
            f"/promotions/{request_id}/reject", data={"csrf": _field(page.text, "csrf")}
        )
        assert again.status_code == 409 and "Refused" in again.text
    assert state.rt.promotion.get_request(request_id).status == "rejected"


def test_rolling_back_a_canary(url: str, state: UiState) -> None:
    with acting_as("alice"):
        state.rt.serving.canary(ENDPOINT, 3, policy=CanaryPolicy(steps=[10, 50, 100]))
    path = f"/deployments/{ENDPOINT}"
    with login(url, state.tokens["mo"]) as member:
        page = member.get(path)
        assert "churn-v3" in page.text and 'id="rollback"' not in page.text
        assert "step 1 of 3" in page.text
        refused = member.post(f"{path}/rollback", data={"csrf": _field(page.text, "csrf")})
        assert refused.status_code == 403
    assert state.rt.serving.get(ENDPOINT)[0].rollout is not None
    with login(url, state.tokens["bob"]) as bob:
        page = bob.get(path)
        assert 'id="rollback"' in page.text
        done = bob.post(
            f"{path}/rollback", data={"csrf": _field(page.text, "csrf"), "reason": "p99 up"}
        )
        assert done.status_code == 303
        shown = bob.get(done.headers["location"])
        assert "Rolled back" in shown.text and "p99 up" in shown.text
        again = bob.post(f"{path}/rollback", data={"csrf": _field(page.text, "csrf")})
        assert again.status_code == 409 and "Refused" in again.text
    spec = state.rt.serving.get(ENDPOINT)[0]
    assert [v.name for v in spec.variants] == ["churn-v1"]


def test_ui_routes_are_not_in_the_api_schema(admin: httpx.Client, state: UiState) -> None:
    schema = httpx.get(
        str(admin.base_url) + "/api/v1/openapi.json",
        headers={"Authorization": f"Bearer {state.tokens['vera']}"},
    ).json()
    assert not [p for p in schema["paths"] if not p.startswith("/api/")]


def test_the_audit_log_pages_without_gaps_or_repeats(admin: httpx.Client) -> None:
    seen: list[int] = []
    path = "/audit?size=7"
    for _ in range(3):
        page = admin.get(path)
        assert page.status_code == 200
        seqs = [
            int(x) for x in re.findall(r'<td class="num">(\d+)</td><td class="time">', page.text)
        ]
        assert len(seqs) == 7 and seqs == sorted(seqs, reverse=True)
        seen += seqs
        older = re.search(r'rel="next" href="([^"]+)"', page.text)
        assert older, "an older page"
        path = older.group(1).replace("&amp;", "&")
    assert seen == list(range(seen[0], seen[0] - 21, -1))  # consecutive: nothing skipped
    assert admin.get("/audit?size=100000").status_code == 400


def test_lineage_of_an_unknown_ref_says_so(admin: httpx.Client) -> None:
    page = admin.get("/lineage", params={"ref": "models:/nope/1"})
    assert page.status_code == 400 and 'role="alert"' in page.text
    assert admin.get("/lineage", params={"ref": "runs:/x", "depth": "99"}).status_code == 400


def test_charts_thin_long_series_keep_spikes_and_gap_at_nan() -> None:
    from milepost.server.ui._charts import MAX_POINTS, Series, line_chart, thin

    points = [(float(i), 0.0) for i in range(100_000)]
    points[54_321] = (54_321.0, 9.0)  # one spike
    kept = thin(points)
    assert len(kept) <= MAX_POINTS + 4 and (54_321.0, 9.0) in kept
    assert kept[0] == points[0] and kept[-1] == points[-1]
    svg = line_chart([Series("a", [(0, 1.0), (1, float("nan")), (2, 2.0), (3, 3.0)])], title="t")
    d = re.search(r' d="([^"]+)"', svg)
    assert d and d.group(1).count("M") == 2  # the NaN is a gap, not a zero
    assert "no values" in line_chart([Series("a", [])], title="empty")
    assert "<script" not in line_chart([Series("<script>", [(0, 1), (1, 2)])], title="<b>")
