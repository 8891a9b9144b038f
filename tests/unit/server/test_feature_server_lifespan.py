"""The feature server's start-up: the heap frozen once, the cached versions refreshed
off the request path, both stopped at shutdown (the ASGI lifespan, driven directly)."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

from milepost.server import features as server_mod
from milepost.server.features import FeatureServer


class Refreshable:
    """What the server asks of a store at start-up: ``refresh``, counted; it fails the
    first ``failures`` times."""

    def __init__(self, failures: int = 0) -> None:
        self.calls = 0
        self.failures = failures

    def refresh(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("metadata store down")


def _run_lifespan(app: FeatureServer, store: Refreshable, refreshes: int) -> dict[str, Any]:
    """Start the app, wait for ``refreshes`` refreshes, shut it down; what happened."""

    async def main() -> dict[str, Any]:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        sent: list[str] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["type"])

        await inbox.put({"type": "lifespan.startup"})
        task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while store.calls < refreshes:  # a wait on a condition, bounded
            assert loop.time() < deadline, f"{store.calls} refreshes after 30 s"
            await asyncio.sleep(0.005)
        frozen = gc.get_freeze_count()
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 30)
        return {"sent": sent, "frozen": frozen, "calls_at_stop": store.calls}

    try:
        return asyncio.run(main())
    finally:
        gc.unfreeze()


@pytest.fixture(autouse=True)
def fast_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_mod, "REFRESH_SECONDS", 0.01)


def test_start_up_freezes_the_heap_and_refreshes_until_shutdown() -> None:
    store = Refreshable()
    app = FeatureServer(store, timeout=5, freeze_gc=True)  # type: ignore[arg-type]
    seen = _run_lifespan(app, store, refreshes=3)
    assert seen["sent"] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert seen["frozen"] > 0
    assert store.calls == seen["calls_at_stop"]  # stopped with the server


def test_an_embedded_app_leaves_the_heap_alone() -> None:
    store = Refreshable()
    app = FeatureServer(store, timeout=5)  # type: ignore[arg-type]
    assert _run_lifespan(app, store, refreshes=1)["frozen"] == 0


def test_a_failing_refresh_is_logged_once_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    store = Refreshable(failures=3)
    app = FeatureServer(store, timeout=5)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="milepost.features"):
        _run_lifespan(app, store, refreshes=5)  # three failures, then two successes
    failures = [r for r in caplog.records if "registered feature views" in r.getMessage()]
    assert len(failures) == 1
