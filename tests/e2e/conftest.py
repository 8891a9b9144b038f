"""The e2e tests that take minutes are marked ``slow`` here (deselected locally, run in CI).

A list rather than decorators, so the test files stay as they are; measured with
``pytest tests/e2e --durations=40`` (each took over 10 s on a 2-core machine shared with
other work). Tests that call the CLI in-process (``cli_in_process``) mostly left it. A
name that no longer matches marks nothing: keep it current.

``offline_page`` opens an HTML file in headless Chromium with nothing fetched (the
monitoring report, the lineage page and the model card tests use it). It uses Debian's
Chromium (``/usr/bin/chromium``, or ``MILEPOST_TEST_CHROMIUM``) through Playwright, with
no browser download. Without either the test is skipped locally with how to install
them; under ``CI=true`` it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

HERE = Path(__file__).parent

SLOW = {
    "test_cli_deploy.py": {"test_endpoints_track_production_and_rollouts_move_the_registry"},
    "test_cli_features.py": {
        "test_feature_server_over_http",
        "test_an_edited_view_keeps_its_old_version_readable_and_says_what_to_run",
    },
    "test_readme.py": {"test_the_readme_runs_top_to_bottom"},
    "test_cli_model_trust.py": {"test_trust_list_add_remove_and_refusals"},
}


@pytest.hookimpl(tryfirst=True)  # before tests/conftest.py deselects what is slow
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path)
        if path.parent != HERE:
            continue
        if getattr(item, "originalname", item.name) in SLOW.get(path.name, ()):
            item.add_marker(pytest.mark.slow)


CHROMIUM = os.environ.get("MILEPOST_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
HOW = (
    "install Chromium (apt-get install -y chromium) and Playwright "
    "(pip install -e '.[dev]'; no browser download is needed)"
)


def browser_or_skip() -> Any:
    """Playwright's ``sync_playwright``; skips (fails under ``CI=true``) without it or
    without Chromium."""
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        problem = f"playwright is not installed ({exc})"
    if problem is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        problem = f"no Chromium at {CHROMIUM}"
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem}; required when CI=true: {HOW}", pytrace=False)
        pytest.skip(f"{problem}; to run: {HOW}")
    return sync_playwright


@dataclass
class OfflinePage:
    """An open page; ``blocked`` and ``attempted`` list what it tried to fetch (besides
    ``file://``), ``errors`` its console errors, page errors and dialogs."""

    page: Any
    blocked: list[str] = field(default_factory=list)
    attempted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def offline_page(tmp_path: Path) -> Callable[..., AbstractContextManager[OfflinePage]]:
    """``with offline_page(html, width=...) as opened:`` the file loaded in headless
    Chromium (a fresh profile under ``tmp_path``), every request but ``file://`` aborted;
    on leaving, asserts that nothing was fetched and nothing went wrong on the page."""
    sync_playwright = browser_or_skip()

    @contextmanager
    def open_page(html: Path, *, width: int = 1280) -> Iterator[OfflinePage]:
        opened = OfflinePage(page=None)

        def route(r: Any) -> None:
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                opened.blocked.append(r.request.url)
                r.abort()

        def request(r: Any) -> None:
            if not r.url.startswith("file://"):
                opened.attempted.append(r.url)

        def console(m: Any) -> None:
            if m.type == "error":
                opened.errors.append(m.text)

        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(tmp_path / "profile"),  # a fresh user-data-dir
                executable_path=CHROMIUM,
                headless=True,
                args=ARGS,
                viewport={"width": width, "height": 900},
            )
            try:
                context.route("**/*", route)
                page = opened.page = context.new_page()
                page.on("request", request)
                page.on("console", console)
                page.on("pageerror", lambda e: opened.errors.append(str(e)))
                page.on("dialog", lambda d: opened.errors.append(f"dialog: {d.message}"))
                page.goto(html.as_uri(), wait_until="load")
                yield opened
            finally:
                context.close()
        assert opened.blocked == [], f"{html.name} tried to fetch: {opened.blocked}"
        assert opened.attempted == [], f"{html.name} tried to fetch: {opened.attempted}"
        assert opened.errors == [], opened.errors

    return open_page
