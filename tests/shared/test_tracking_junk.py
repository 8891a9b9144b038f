"""Junk in, ``MilepostError`` out, remotely too: every :class:`RemoteTracking` method
refuses bad arguments with the embedded service's errors (never ``TypeError``), and the
server never answers a junk request with a 500 (``internal``)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from milepost.client import RemoteRuntime
from milepost.client.tracking import RemoteTracking
from milepost.config import load_settings
from milepost.errors import MilepostError
from tests.unit.test_junk_input import JUNK

METHODS = sorted(
    name
    for name, _ in inspect.getmembers(RemoteTracking, inspect.isfunction)
    if not name.startswith("_") and name not in ("close", "flush")
)


@pytest.fixture(scope="module")
def remote(platform: dict[str, Any]) -> Iterator[tuple[RemoteRuntime, dict[str, list[Any]]]]:
    env = {
        "MILEPOST_URL": platform["url"],
        "MILEPOST_TOKEN": platform["token"],
        "MILEPOST_METRIC_FLUSH_TIMEOUT": "2",
    }
    rt = RemoteRuntime(load_settings(env=env, cwd=Path(platform["home"])))
    tracking = rt.tracking
    run = tracking.start_run(experiment="junk-remote")
    tracking.log_metric(run.run_id, "loss", 0.5)
    tracking.log_bytes(run.run_id, b"notes", "notes.txt")
    files = Path(platform["home"]) / "junk-files"
    files.mkdir(exist_ok=True)
    (files / "a.txt").write_text("a")
    good = {
        "run_id": [run.run_id],
        "parent_run_id": [run.run_id, None],
        "experiment": ["junk-remote", run.experiment_id],
        "experiments": ["junk-remote", [run.experiment_id]],
        "ref": ["junk-remote", run.experiment_id],
        "name": ["junk-remote-2"],
        "new_name": ["junk-remote-3"],
        "key": ["loss"],
        "value": [1.0],
        "values": [{"loss": 1.0}],
        "items": [{"a": 1}],
        "path": ["notes.txt", ""],
        "artifact_file": ["x.txt"],
        "data": [b"x"],
        "local_path": [files / "a.txt"],
        "local_dir": [files],
        "dst": [Path(platform["home"]) / "junk-out"],
        "env_hash": [run.env_hash],
        "status": ["FINISHED"],
        "dry_run": [True],
        "max_results": [5],
    }
    yield rt, good
    with contextlib.suppress(MilepostError):  # junk may be queued; it was asserted on
        rt.close()


@pytest.mark.parametrize("method", METHODS)
def test_only_milepost_errors_escape_and_never_a_500(
    remote: tuple[RemoteRuntime, dict[str, list[Any]]], method: str
) -> None:
    rt, good = remote
    fn = getattr(rt.tracking, method)
    sig = inspect.signature(fn)

    @settings(
        max_examples=15,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def probe(data: st.DataObject) -> None:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for p in sig.parameters.values():
            if p.default is not p.empty and data.draw(st.integers(0, 2)) == 0:
                continue
            if p.name in good and data.draw(st.integers(0, 2)) > 0:
                value = data.draw(st.sampled_from(good[p.name]))
            else:
                value = data.draw(JUNK)
            if p.kind == p.KEYWORD_ONLY:
                kwargs[p.name] = value
            else:
                args.append(value)
        try:
            fn(*args, **kwargs)
        except MilepostError as exc:
            assert exc.code != "internal", f"{method}: the server answered 500: {exc}"
        except Exception as exc:
            raise AssertionError(f"{method} raised {type(exc).__name__}: {exc}") from exc

    probe()
