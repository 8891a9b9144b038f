"""`milepost check ...` as a user (and the generated CI) types it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import milepost
from tests._project import BATCH_MEAN, ROW_WISE, FixtureProject, rewrite, write_project
from tests._server import platform_server
from tests.e2e.test_cli import cli, cli_in_process
from tests.shared._registry import register_model


@pytest.fixture
def project(tmp_path: Path) -> FixtureProject:
    return write_project(tmp_path / "proj")  # not installed, not on sys.path


def test_check_project_prints_a_table_and_exits_1_naming_what_to_fix(
    project: FixtureProject,
) -> None:
    done = cli_in_process("check", "project", cwd=project.root / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "definitions" in done.stdout
    assert "1 entity, 1 feature view, 1 on-demand view" in done.stdout
    assert "all 11 checks passed" in done.stdout

    project.edit("train.py", "fit = None\n")
    done = cli_in_process("check", "project", cwd=project.root)
    assert done.returncode == 1
    assert "FAIL" in done.stdout
    assert "is a NoneType, not a function" in done.stdout
    assert "1 of 11 checks failed" in done.stdout

    done = cli_in_process("check", "project", "--json", cwd=project.root)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    (failed,) = [c for c in report["checks"] if not c["ok"]]
    assert failed["name"] == "train"


def test_check_project_as_the_pre_commit_hook_runs_it(project: FixtureProject) -> None:
    """A real process (the console script), in a project not installed yet."""
    done = cli("check", "project", cwd=project.root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 11 checks passed" in done.stdout
    (project.root / "policy.yaml").write_text("staging: [{kind: approvall}]\n")
    done = cli("check", "project", cwd=project.root)
    assert done.returncode == 1
    assert "approvall" in done.stdout


def test_check_project_outside_a_project_fails_with_how_to_start_one(tmp_path: Path) -> None:
    done = cli_in_process("check", "project", cwd=tmp_path)
    assert done.returncode == 1
    assert "not a Milepost project" in done.stdout
    assert "milepost init" in done.stdout


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    rt = milepost.Runtime.open(home=str(tmp_path / "server"), user="alice")
    _, token = rt.tokens.create("ci", "admin")
    with platform_server(rt) as url:
        yield {"rt": rt, "url": url, "token": token}
    rt.close()


def test_in_remote_mode_the_servers_policy_must_equal_the_file(
    project: FixtureProject, server: dict[str, Any]
) -> None:
    env = {"MILEPOST_URL": server["url"], "MILEPOST_TOKEN": server["token"]}
    model = project.model

    def server_check() -> dict[str, Any]:
        done = cli_in_process("check", "project", "--json", cwd=project.root, env=env)
        (check,) = [c for c in json.loads(done.stdout)["checks"] if c["name"] == "server policy"]
        assert done.returncode == (0 if check["ok"] else 1)
        return check

    check = server_check()  # the model does not exist on the server yet
    assert not check["ok"]
    assert f"has no model {model!r}" in check["detail"]
    assert f"milepost models policy {model} --set policy.yaml" in check["detail"]

    rt = server["rt"]
    register_model(rt, model, versions=1)
    check = server_check()  # no policy set: it differs
    assert not check["ok"]
    assert "differs from policy.yaml" in check["detail"]

    rt.promotion.set_policy(model, project.root / "policy.yaml")
    check = server_check()
    assert check["ok"], check
    assert check["detail"] == f"the server's policy for {model} equals policy.yaml"

    rt.promotion.set_policy(model, "staging: [{kind: approval, role: approver}]\n")
    assert not server_check()["ok"]


def test_check_consistency_passes_then_names_the_feature_a_batch_statistic_breaks(
    project: FixtureProject,
) -> None:
    done = cli_in_process("check", "consistency", cwd=project.root)
    assert done.returncode == 0, done.stdout + done.stderr
    at = "2026-05-31T00:00:01+00:00"
    assert f"activity:v1: 40 entities at {at} (40 with values online): consistent" in done.stdout
    assert f"basket:v1: 40 entities at {at} (40 with values online): consistent" in done.stdout

    features = project.src / "features.py"
    rewrite(features, ROW_WISE, BATCH_MEAN)
    done = cli("check", "consistency", cwd=project.root)  # a real process, as CI runs it
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"activity:v1: 40 entities at {at} (40 with values online): consistent" in done.stdout
    assert f"basket:v1: 40 entities at {at} (40 with values online): MISMATCHES" in done.stdout
    assert "spend_share: 40 of 40 differ" in done.stdout
    example = re.search(
        r"entity \{customer_id: (\d+), basket_value: ([\d.]+)\}: online ([\d.e-]+), "
        r"offline ([\d.e-]+)",
        done.stdout,
    )
    assert example is not None, done.stdout
    assert float(example.group(3)) != pytest.approx(float(example.group(4)))

    done = cli_in_process("check", "consistency", "basket", "--json", cwd=project.root)
    assert done.returncode == 1
    (report,) = json.loads(done.stdout)
    assert (report["view"], report["ok"], report["mismatches"]) == (
        "basket:v1",
        False,
        {"spend_share": 40},
    )


def test_check_consistency_store_refuses_remote_mode(project: FixtureProject) -> None:
    env = {"MILEPOST_URL": "http://127.0.0.1:9"}
    done = cli_in_process("check", "consistency", "--store", cwd=project.root, env=env)
    assert done.returncode == 1
    assert "MILEPOST_URL" in done.stderr
    assert "leave out --store" in done.stderr


def test_lint_types_and_tests_run_the_projects_own_tools(project: FixtureProject) -> None:
    done = cli("check", "lint", cwd=project.root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "$ python -m ruff check ." in done.stdout
    assert "$ python -m ruff format --check ." in done.stdout
    train = project.src / "train.py"
    train.write_text("import os\n\n\ndef fit(X, y) -> int:\n    return 'rows'\n")
    done = cli("check", "lint", cwd=project.root)
    assert done.returncode == 1
    assert "F401" in done.stdout  # ruff's own report, streamed through
    assert "$ python -m ruff format --check ." in done.stdout  # both ran

    done = cli("check", "types", cwd=project.root)
    assert done.returncode == 1
    assert "$ python -m mypy" in done.stdout
    assert 'Incompatible return value type (got "str", expected "int")' in done.stdout

    (project.root / "tests" / "integration" / "test_integration.py").write_text(
        "def test_integration():\n    assert 1 == 2\n"
    )
    done = cli("check", "tests", "unit", cwd=project.root)
    assert done.returncode == 0, done.stdout
    assert "$ python -m pytest tests/unit" in done.stdout
    assert "1 passed" in done.stdout
    done = cli("check", "tests", "integration", cwd=project.root)
    assert done.returncode == 1
    assert "1 failed" in done.stdout
    done = cli("check", "tests", "--", "-k", "unit", cwd=project.root)  # all, filtered
    assert done.returncode == 0, done.stdout
    assert "$ python -m pytest tests/unit tests/integration -k unit" in done.stdout
    assert "1 passed, 1 deselected" in done.stdout
