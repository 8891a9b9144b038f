"""The web UI in headless Chromium: log in with a token, open a run and see its metric
chart, approve a pending promotion as a second user (four eyes), roll back a canary.

The browser reaches nothing but the server (every other request is aborted and counted),
and the pages raise no script errors. A failing test leaves a screenshot under
``test-artifacts/`` (CI keeps that directory).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost._actor import acting_as
from milepost.serving import CanaryPolicy
from tests._server import platform_server
from tests._wait import wait_until
from tests.e2e.conftest import ARGS, CHROMIUM, browser_or_skip
from tests.integration.test_ui_pages import ENDPOINT, MODEL, UiState, build_state

_REFUSED = "Failed to load resource: the server responded with a status of 4"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def state(
    tmp_path_factory: pytest.TempPathFactory,
    churn_models: dict[str, Any],
    churn_frame: pd.DataFrame,
) -> Iterator[UiState]:
    built = build_state(tmp_path_factory.mktemp("ui-browser"), churn_models, churn_frame)
    yield built
    built.rt.close()


@pytest.fixture(scope="module")
def url(state: UiState) -> Iterator[str]:
    with platform_server(state.rt) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = browser_or_skip()
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


class Session:
    """A fresh browser context (its own cookies) on the server, watched for requests to
    anywhere else and for script errors."""

    def __init__(self, browser: Any, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.elsewhere: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        # a refusal page (403, 409) is logged as a failed load: the tests check its text
        if message.type == "error" and not message.text.startswith(_REFUSED):
            self.errors.append(message.text)

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(self.url):
            route.continue_()
        else:
            self.elsewhere.append(route.request.url)
            route.abort()

    def login(self, token: str) -> None:
        self.page.goto(self.url + "/experiments")
        assert "/login" in self.page.url  # sent to log in first
        self.page.fill("#token", token)
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_url(re.compile(r".*/experiments$"))


@contextlib.contextmanager
def session(browser: Any, url: str, name: str) -> Iterator[Session]:
    """A :class:`Session`; on failure its page is saved to ``test-artifacts/NAME.png``."""
    opened = Session(browser, url, name)
    try:
        yield opened
        assert opened.elsewhere == [], f"the page fetched from elsewhere: {opened.elsewhere}"
        assert opened.errors == [], opened.errors
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        with contextlib.suppress(Exception):
            opened.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        raise
    finally:
        opened.context.close()


def test_log_in_open_a_run_and_see_its_metric_chart(browser: Any, url: str, state: UiState) -> None:
    with session(browser, url, "ui-run-chart") as s:
        s.login(state.tokens["vera"])
        page = s.page
        assert page.locator("header .user").inner_text().startswith("vera")
        page.click("text=ui-churn")
        page.wait_for_selector("table.runs")
        assert page.locator("table.runs tbody tr").count() == 3
        assert page.locator("#compare-button").is_disabled()  # until two runs are ticked
        page.click("table.runs >> text=logreg-wide")
        page.wait_for_selector("figure.chart[data-metric=loss] svg.chart")
        line = page.locator("figure.chart[data-metric=loss] path.line")
        assert line.count() == 1
        assert re.fullmatch(r"M[\d.,]+( L[\d.,]+){19}", line.get_attribute("d") or "")
        box = page.locator("figure.chart[data-metric=loss] svg.chart").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150
        page.go_back()
        page.locator("input[name=run]").nth(0).check()
        page.locator("input[name=run]").nth(1).check()
        assert page.locator("#compare-button").inner_text() == "Compare 2 selected runs"
        page.click("#compare-button")
        page.wait_for_selector("table.compare")
        assert page.locator("figure.chart[data-metric=loss] path.line").count() == 2


def test_a_second_user_approves_a_pending_promotion(browser: Any, url: str, state: UiState) -> None:
    with acting_as("alice"):
        req = milepost.Client(state.rt).promote(MODEL, 2, "Production", reason="better auc")
    assert req.status == "pending_approval"
    with session(browser, url, "ui-approve-own") as s:
        s.login(state.tokens["alice"])  # the requester may not approve it (four eyes)
        s.page.goto(url + "/approvals")
        s.page.click(f"button.approve[data-request='{req.request_id}']")
        s.page.wait_for_selector("[role=alert]")
        assert "Refused" in s.page.locator("[role=alert]").inner_text()
    assert state.rt.promotion.get_request(req.request_id).status == "pending_approval"
    with session(browser, url, "ui-approve") as s:
        s.login(state.tokens["bob"])
        s.page.click("nav >> text=Approvals")
        card = s.page.locator(f"#req-{req.request_id}")
        card.locator("input[name=reason]").fill("checked the gates")
        card.locator("button.approve").click()
        s.page.wait_for_selector("[role=status]")
        assert s.page.locator("#request-status").inner_text() != "pending_approval"
        assert "checked the gates" in s.page.content()
    assert state.rt.models.get_model(MODEL).stages["Production"] == [2]
    assert state.rt.promotion.get_request(req.request_id).decided_by == "bob"


def test_an_approver_rolls_back_a_canary(browser: Any, url: str, state: UiState) -> None:
    with acting_as("alice"):
        state.rt.serving.canary(ENDPOINT, 3, policy=CanaryPolicy(steps=[10, 50, 100]))
    with session(browser, url, "ui-rollback") as s:
        s.login(state.tokens["bob"])
        s.page.click("nav >> text=Deployments")
        s.page.click(f"table >> text={ENDPOINT}")
        assert s.page.locator("#rollout-status").inner_text() == "progressing"
        assert "churn-v3 10 %" in s.page.locator(".bar").first.inner_text()
        s.page.click("#rollback")
        s.page.wait_for_selector("[role=status]")
        assert "Rolled back" in s.page.locator("[role=status]").inner_text()
        assert s.page.locator("#rollout-status").inner_text() == "rolled_back"
    assert [v.name for v in state.rt.serving.get(ENDPOINT)[0].variants] == ["churn-v1"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_ui_serves_what_the_demo_made(browser: Any, tmp_path: Path) -> None:
    """`milepost demo --ui`: the demo, then its home in the browser with the printed
    token, until Ctrl-C."""
    out = tmp_path / "demo.log"
    command = [sys.executable, "-m", "milepost", "demo", "--ui", "--rows", "500", "--port", "0"]
    with out.open("w") as log:
        proc = subprocess.Popen(
            [*command, "--home", str(tmp_path / "home")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
    try:
        found = wait_until(
            lambda: re.search(
                r"Web UI\s+(http://127\.0\.0\.1:\d+)/.*?Token\s+(\S+)", out.read_text(), re.S
            ),
            what="the demo to print the web UI's address and token",
            timeout=800,
            interval=1.0,
            detail=lambda: out.read_text()[-2000:],
        )
        url, token = found.group(1), found.group(2)
        with session(browser, url, "ui-demo") as s:
            s.login(token)
            assert "churn-demo" in s.page.content()
            s.page.goto(url + "/models/churn")
            assert "Production" in s.page.content()
            s.page.goto(url + "/deployments/churn")
            assert s.page.locator("table.variants tbody tr").count() >= 1
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0, out.read_text()[-2000:]
