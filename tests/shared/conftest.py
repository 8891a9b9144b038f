"""The shared suite: every test here runs twice, embedded and remote.

``client`` is a :class:`milepost.Client` over the embedded runtime, or over a
:class:`~milepost.client.RemoteRuntime` talking to a real ``milepost server`` on
127.0.0.1 (same stores, token of an admin named ``alice``). A test makes the same calls
and asserts the same results in both modes; names it creates must be unique per test
(``unique``), since both modes share one store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import milepost
from milepost.client import RemoteRuntime
from milepost.config import load_settings
from tests._server import platform_server


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One embedded runtime and a platform server over it, for the module."""
    home = tmp_path_factory.mktemp("shared")
    rt = milepost.Runtime.open(home=str(home / ".milepost"), user="alice")
    _, secret = rt.tokens.create("shared-suite", "admin")
    with platform_server(rt) as url:
        yield {"rt": rt, "url": url, "token": secret, "home": home}
    rt.close()


@pytest.fixture(params=["embedded", "remote"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runtime(platform: dict[str, Any], mode: str) -> Iterator[Any]:
    """The runtime of this mode: the embedded one, or a remote one to the server."""
    if mode == "embedded":
        yield platform["rt"]
        return
    resolved = load_settings(
        env={"MILEPOST_URL": platform["url"], "MILEPOST_TOKEN": platform["token"]},
        cwd=Path(platform["home"]),
    )
    remote = RemoteRuntime(resolved)
    try:
        yield remote
    finally:
        remote.close()


@pytest.fixture
def client(runtime: Any) -> milepost.Client:
    return milepost.Client(runtime)


@pytest.fixture
def unique() -> str:
    """A name no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"
