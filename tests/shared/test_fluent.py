"""The module-level API (``milepost.start_run``, ``log_metric``...), embedded and remote.

``milepost.configure(url=..., token=...)`` switches the process to remote mode, exactly
as ``MILEPOST_URL``/``MILEPOST_TOKEN`` do; embedded, ``configure(home=...)`` opens the
same stores the server serves. The autouse ``clean_environ`` resets the process after.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import milepost
from milepost.errors import Conflict, InvalidInput, NotFound
from milepost.tracking import RunStatus


@pytest.fixture
def fluent(platform: dict[str, Any], mode: str) -> Iterator[str]:
    """The process's runtime configured for this mode."""
    if mode == "remote":
        rt = milepost.configure(url=platform["url"], token=platform["token"])
        assert getattr(type(rt), "remote", False) is True
    else:
        home = Path(platform["home"]) / ".milepost"
        rt = milepost.configure(home=str(home), user="alice")
        assert isinstance(rt, milepost.Runtime)
    yield mode
    milepost.reset()


def test_start_log_end(fluent: str, unique: str) -> None:
    with milepost.start_run(experiment=unique, run_name="fluent", tags={"k": "v"}) as active:
        milepost.log_param("lr", 0.01)
        milepost.log_params({"depth": 3, "model": "gbm"})
        for step in range(10):
            milepost.log_metric("loss", 1.0 / (step + 1), step=step)
        milepost.log_metrics({"acc": 0.9, "auc": math.nan}, step=10)
        milepost.set_tag("stage", "dev")
        milepost.set_tags({"a": 1})
        assert milepost.active_run() is active
    assert milepost.active_run() is None
    run = milepost.Client().get_run(active.run_id)
    assert run.status is RunStatus.FINISHED
    assert run.name == "fluent"
    assert run.user == "alice"
    assert run.params == {"depth": "3", "lr": "0.01", "model": "gbm"}
    assert run.tags == {"a": "1", "k": "v", "stage": "dev"}
    assert run.metrics["loss"] == pytest.approx(0.1)
    assert run.metrics["acc"] == 0.9 and math.isnan(run.metrics["auc"])
    history = milepost.Client().get_metric_history(active.run_id, "loss")
    assert [m.step for m in history] == list(range(10))


def test_flush_makes_metrics_durable(fluent: str, platform: dict[str, Any], unique: str) -> None:
    active = milepost.start_run(experiment=unique)
    for step in range(2500):
        milepost.log_metric("x", float(step), step=step)
    milepost.flush()
    stored = platform["rt"].tracking.store.metric_history(active.run_id, "x")
    assert len(stored) == 2500
    milepost.end_run()
    assert milepost.Client().get_run(active.run_id).status is RunStatus.FINISHED


def test_failed_block_marks_the_run_failed_and_nested_runs(fluent: str, unique: str) -> None:
    with pytest.raises(RuntimeError), milepost.start_run(experiment=unique) as outer:
        with pytest.raises(Conflict, match="already active"):
            milepost.start_run()
        inner = milepost.start_run(nested=True)
        assert milepost.Client().get_run(inner.run_id).parent_run_id == outer.run_id
        raise RuntimeError("boom")
    client = milepost.Client()
    failed = client.get_run(outer.run_id)
    assert failed.status is RunStatus.FAILED
    assert failed.error is not None and "boom" in failed.error
    assert client.get_run(inner.run_id).status is RunStatus.FAILED


def test_log_text_and_dict(fluent: str, unique: str, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("file")
    with milepost.start_run(experiment=unique) as active:
        milepost.log_text("some text", "notes/a.txt")
        milepost.log_dict({"a": [1, 2]}, "conf/c.json")
        milepost.log_artifact(tmp_path / "f.txt", "files")
    client = milepost.Client()
    assert client.load_text(active.run_id, "notes/a.txt") == "some text"
    assert client.load_dict(active.run_id, "conf/c.json") == {"a": [1, 2]}
    assert client.load_text(active.run_id, "files/f.txt") == "file"


def test_errors_are_the_same(fluent: str, unique: str) -> None:
    with pytest.raises(InvalidInput, match="No active run"):
        milepost.log_metric("x", 1.0)
    with milepost.start_run(experiment=unique):
        with pytest.raises(InvalidInput, match="real number"):
            milepost.log_metric("x", "one")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="metric name"):
            milepost.log_metric("bad//key", 1.0)
    with pytest.raises(NotFound):
        milepost.Client().get_run("a" * 32)


def test_default_experiment_is_the_callers_setting(fluent: str) -> None:
    with milepost.start_run() as active:
        pass
    client = milepost.Client()
    experiment = client.get_experiment(client.get_run(active.run_id).experiment_id)
    assert experiment.name == "Default"


def test_milepost_url_switches_the_process_to_remote(
    platform: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from milepost.client import RemoteRuntime
    from milepost.errors import ConfigError

    monkeypatch.setenv("MILEPOST_URL", platform["url"])
    monkeypatch.setenv("MILEPOST_TOKEN", platform["token"])
    milepost.reset()
    rt = milepost.get_runtime()
    assert isinstance(rt, RemoteRuntime)
    assert milepost.get_runtime() is rt
    assert rt.whoami()["user"] == "alice"
    with pytest.raises(ConfigError, match="not available in remote mode") as caught:
        rt.db  # noqa: B018
    assert "MILEPOST_URL" in str(caught.value)
    assert not hasattr(rt, "blobs")  # still an AttributeError for hasattr
    with pytest.raises(AttributeError):
        rt._private  # noqa: B018
    milepost.reset()
    assert not (tmp_path / ".milepost").exists()  # nothing local was opened
    back = milepost.configure(url=None)
    assert isinstance(back, milepost.Runtime)


def test_module_level_data_functions_reach_the_server_in_remote_mode(
    platform: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    """``milepost.data.register`` and friends take the process's runtime: in remote mode
    the server's, even when they are the first call (no local store is opened); what
    needs local stores (a FeatureStore) says so."""
    import pandas as pd

    from milepost.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MILEPOST_URL", platform["url"])
    monkeypatch.setenv("MILEPOST_TOKEN", platform["token"])
    milepost.reset()
    try:
        made = milepost.data.register(unique, pd.DataFrame({"x": [1, 2, 3]}))
        assert made.version == 1 and milepost.data.get(unique).version_id == made.version_id
        assert [v.version for v in milepost.data.list_versions(unique)] == [1]
        stored = platform["rt"].data.get(f"{unique}@1")  # on the server's store
        assert stored.num_rows == 3 and stored.content_hash == made.content_hash
        with pytest.raises(ConfigError, match="remote mode"):
            milepost.features.FeatureStore([])
    finally:
        milepost.reset()
    assert not (tmp_path / ".milepost").exists()  # nothing local was opened
