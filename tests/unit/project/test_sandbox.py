"""The sandbox: a fresh embedded Milepost with the project's sample data, features and
policy, used by the process (and its pipeline workers), and everything back on exit."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

import milepost
from milepost.features import FeatureStore
from milepost.project import load_project, sandbox
from milepost.project.sandbox import load_sample, sample_end
from tests._project import write_project


def test_the_process_uses_the_sandbox_inside_and_its_own_stores_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixture = write_project(tmp_path / "proj")  # not on sys.path: the sandbox adds src/
    pkg = fixture.package
    outer = milepost.configure(home=tmp_path / "outer")
    milepost.data.register("outer.only", pd.DataFrame({"x": [1]}))
    monkeypatch.setenv("MILEPOST_URL", "http://127.0.0.1:9")  # a server: never used inside
    path_before, env_before = list(sys.path), dict(os.environ)

    with sandbox(load_project(fixture.root)) as project:
        home = project.settings.settings.home
        assert home.is_dir() and home != outer.settings.home
        rt = milepost.get_runtime()
        assert isinstance(rt, milepost.Runtime)  # embedded, despite MILEPOST_URL
        assert rt.settings.home == home
        names = {d.name for d in milepost.data.list_datasets()}
        assert names == {f"{pkg}.customers", f"{pkg}.labels"}  # the sample, nothing else
        assert os.environ["MILEPOST_HOME"] == str(home)  # for child processes
        assert "MILEPOST_URL" not in os.environ

        store = FeatureStore(project.feature_repo)
        online = rt.features.get_online_features(  # at the sample's "now" (it is fixed)
            store.definitions,
            ["activity:monthly_spend", "basket:spend_share"],
            [{"customer_id": 1, "basket_value": 50.0}],
            now=sample_end(load_sample(project)),
        )
        assert online.statuses["monthly_spend"] == ["present"]  # the sample's newest row
        assert online.values["spend_share"][0] == pytest.approx(
            online.values["monthly_spend"][0] / 50.0
        )

        run = milepost.run_pipeline(project.config.pipeline, {"n": 5}, max_workers=2)
        assert run.status == "succeeded", run.error
        doubled = milepost.data.get(f"{pkg}.doubled").to_pandas()
        assert doubled["n"].tolist() == [10]
        assert doubled["pid"].tolist() != [os.getpid()]  # written by a worker process

    assert not home.exists()  # a temporary home is removed
    assert sys.path == path_before
    assert dict(os.environ) == env_before
    monkeypatch.delenv("MILEPOST_URL")
    assert milepost.get_runtime().context is outer.context
    assert {d.name for d in milepost.data.list_datasets()} == {"outer.only"}


def test_an_error_inside_still_restores_everything(tmp_path: Path) -> None:
    fixture = write_project(tmp_path / "proj")
    outer = milepost.configure(home=tmp_path / "outer")
    with pytest.raises(RuntimeError, match="boom"), sandbox(load_project(fixture.root)) as p:
        home = p.settings.settings.home
        raise RuntimeError("boom")
    assert not home.exists()
    assert milepost.get_runtime().context is outer.context


def test_a_given_home_is_kept_and_the_policy_is_set_on_the_model(tmp_path: Path) -> None:
    fixture = write_project(tmp_path / "proj")
    with sandbox(load_project(fixture.root), home=tmp_path / "kept") as project:
        assert project.settings.settings.home == (tmp_path / "kept").resolve()
        policy = milepost.get_runtime().promotion.get_policy(fixture.model)
        assert policy.deploy.endpoint == fixture.endpoint
        assert [g.kind for g in policy.production] == ["metric_vs_baseline"]
    assert (tmp_path / "kept" / "milepost.db").is_file()


def test_sample_data_that_is_not_a_dict_of_frames_is_refused(tmp_path: Path) -> None:
    fixture = write_project(tmp_path / "proj")
    fixture.edit("data.py", "def sample():\n    return [1, 2]\n")
    refused = pytest.raises(milepost.errors.InvalidInput, match=r"returned list, not \{dataset")
    with refused, sandbox(load_project(fixture.root)):
        pass
