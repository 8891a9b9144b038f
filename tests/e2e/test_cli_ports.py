"""A port in use is one line and exit 1 for both servers, before anything says "serving".

A real socket holds the port (bound and listening on 127.0.0.1, as another server
would); the commands run as the console script a user types.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost import Client
from milepost.errors import Conflict, InvalidInput
from milepost.server.listen import listen
from tests.contract.conftest import FEATURES
from tests.e2e.test_cli import cli
from tests.e2e.test_cli_features import REPO


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another process listens on (no SO_REUSEADDR, like most servers)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(8)
        yield int(holder.getsockname()[1])


def _assert_port_error(out: Any, port: int, serving_line: str) -> None:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"Error [conflict]: Port {port} on 127.0.0.1 is in use"), lines
    assert "--port" in lines[0]
    assert "Traceback" not in out.stderr
    assert serving_line not in out.stdout, out.stdout


@pytest.mark.parametrize("workers", ["1", "2"])
def test_features_serve_port_in_use(tmp_path: Path, taken: int, workers: str) -> None:
    (tmp_path / "features.py").write_text(REPO)
    out = cli("features", "serve", "--port", str(taken), "--workers", workers, cwd=tmp_path)
    _assert_port_error(out, taken, "Feature server on")


def test_serve_port_in_use(
    tmp_path: Path, taken: int, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    home = tmp_path / ".milepost"  # the default home of a command run in tmp_path
    rt = milepost.configure(home=home)
    with milepost.start_run(experiment="ports"):
        milepost.log_model(
            churn_models["weak"], "churn", input_example=churn_frame[FEATURES].head(3)
        )
    Client().promote("churn", 1, "Production")
    rt.serving.create("churn-ep", "churn")
    milepost.reset()
    out = cli("endpoints", "serve", "churn-ep", "--port", str(taken), cwd=tmp_path)
    _assert_port_error(out, taken, "Serving")


def test_listen_says_what_is_wrong(taken: int) -> None:
    with pytest.raises(Conflict, match=re.escape(f"Port {taken} on 127.0.0.1 is in use")):
        listen("127.0.0.1", taken)
    with pytest.raises(InvalidInput, match=re.escape("no-such-host.invalid")):
        listen("no-such-host.invalid", 0)
    with listen("127.0.0.1", 0) as sock:  # 0: a free port, read back from the socket
        assert sock.getsockname()[1] > 0 and sock.get_inheritable()
