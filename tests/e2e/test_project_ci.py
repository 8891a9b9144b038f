"""From `milepost init` to a canary, by running exactly the commands the generated CI runs.

The first test creates a project, installs it into this Python environment (the
workflow's install command plus ``--no-build-isolation``: tests run offline), runs every
``run:`` command of ``.github/workflows/pr.yml`` in order in the project, then starts
``milepost server`` on 127.0.0.1 with its own home and tokens (an admin creates an
approver, who sets the policy, and a member token for CI) and runs ``main.yml``'s
commands twice with ``MILEPOST_URL``/``MILEPOST_TOKEN`` set, checking through the API
what each release did. The second edits the on-demand transform so that its online path
differs (a batch statistic) and expects ``milepost check consistency`` to fail, naming
the feature, the entity and both values.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from milepost.project.scaffold import PR_COMMANDS
from tests.e2e.test_cli import MILEPOST
from tests.e2e.test_cli_server import serving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

BIN = Path(sys.executable).parent
INSTALL = 'python -m pip install -e ".[dev]"'


@dataclass(frozen=True)
class Project:
    root: Path
    name: str
    package: str


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without MILEPOST_* settings, with this venv's ``python`` and
    ``milepost`` first on PATH (what CI's setup-python and install give)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env["COLUMNS"] = "200"
    env.update(extra or {})
    return env


def sh(command: str, *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run one CI command as a CI runner does (a shell); fail with its output unless it
    exits 0. Returns stdout and stderr."""
    done = subprocess.run(  # noqa: S602 (a workflow's `run:` line is shell, ours)
        command,
        shell=True,
        cwd=cwd,
        env=_env(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{output}"
    return output


def runs(workflow: Path, job: str) -> list[str]:
    """The ``run:`` commands of a GitHub workflow's job, in order."""
    steps = yaml.safe_load(workflow.read_text())["jobs"][job]["steps"]
    return [step["run"] for step in steps if "run" in step]


def offline(command: str) -> str:
    """The workflow's install command as the tests run it: no build isolation (it would
    download hatchling) and no package index (everything is installed already)."""
    assert command == INSTALL
    return command.replace("pip install", "pip install --no-build-isolation --no-index")


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """A new classification project (a unique name: it is installed into this venv),
    uninstalled afterwards."""
    name = f"churn-{uuid.uuid4().hex[:8]}"
    sh(f"milepost init {name}", cwd=tmp_path)
    project = Project(tmp_path / name, name, name.replace("-", "_"))
    try:
        yield project
    finally:
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "-y", "-q", name],
            capture_output=True,
            check=False,
            timeout=300,
        )


def _token(home: Path, name: str, role: str, user: str) -> str:
    out = sh(
        f"milepost tokens create --name {name} --role {role} --user {user}",
        cwd=home.parent,
        env={"MILEPOST_HOME": str(home), "MILEPOST_USER": "ada"},
    )
    return next(line for line in out.splitlines() if line.startswith("mp_"))


def _get(url: str, token: str, path: str) -> dict[str, object]:
    response = httpx.get(
        f"{url}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def _variants(url: str, token: str, endpoint: str) -> list[tuple[str, int]]:
    spec = _get(url, token, f"/endpoints/{endpoint}")["spec"]
    assert isinstance(spec, dict)
    return sorted((v["role"], v["version"]) for v in spec["variants"])


def test_from_init_to_a_canary_with_the_generated_ci(project: Project, tmp_path: Path) -> None:
    root = project.root
    model = endpoint = project.name
    staging = f"{project.name}-staging"

    # a pull request: exactly pr.yml's commands, in order
    pr = runs(root / ".github/workflows/pr.yml", "checks")
    assert pr == list(PR_COMMANDS)
    sh(offline(pr[0]), cwd=root)
    outputs = {command: sh(command, cwd=root) for command in pr[1:]}
    assert "all 11 checks passed" in outputs["milepost check project"]
    assert "passed" in outputs["milepost check tests integration"]

    # the team's server: its own home; an admin (ada) makes the approver's and CI's tokens
    home = tmp_path / "server" / ".milepost"
    home.parent.mkdir()
    approver = _token(home, "policy", "approver", "bob")
    member = _token(home, "ci", "member", f"{project.name}-ci")
    # the server has the project installed: its endpoints import the module that defined
    # the on-demand feature (no feature_repo setting: one server, many projects)
    server_env = {"MILEPOST_HOME": str(home)}
    with serving(cwd=home.parent, env=server_env) as served:
        url = served.url()
        # the approver sets the policy before the first release (no model yet)
        sh(
            f"milepost models policy {model} --set policy.yaml",
            cwd=root,
            env={"MILEPOST_URL": url, "MILEPOST_TOKEN": approver},
        )
        ci = {"MILEPOST_URL": url, "MILEPOST_TOKEN": member}
        main = runs(root / ".github/workflows/main.yml", "release")
        assert main[0] == INSTALL
        assert f"milepost pipelines run {project.package}.pipeline:release" in main

        def release() -> dict[str, str]:
            """One push to main: main.yml's commands in order; their outputs."""
            return {c: sh(offline(c) if c == INSTALL else c, cwd=root, env=ci) for c in main}

        # the first push to main: v1 enters Production and serves on both endpoints
        release()
        assert _get(url, member, f"/models/{model}")["production_version"] == 1
        assert _variants(url, member, endpoint) == [("primary", 1)]
        assert _variants(url, member, staging) == [("primary", 1)]

        # the next push: v2 serves Staging and starts as a canary beside Production v1
        shown = release()
        assert _variants(url, member, staging) == [("primary", 2)]
        assert _variants(url, member, endpoint) == [("canary", 2), ("primary", 1)]
        assert _get(url, member, f"/models/{model}")["production_version"] == 1
        assert re.search(r"canary", shown[f"milepost endpoints show {endpoint}"])


def test_consistency_fails_when_the_online_path_differs(tmp_path: Path) -> None:
    sh("milepost init shop", cwd=tmp_path)
    root = tmp_path / "shop"
    sh("milepost check consistency", cwd=root)  # as generated: consistent

    features = root / "src/shop/features.py"
    row_wise = 'df["discounted_spend"] = spend * (1 - df["offered_discount"] / 100)'
    assert row_wise in features.read_text()
    # a batch statistic: training sees the whole batch's mean, serving one row's
    features.write_text(features.read_text().replace(row_wise, row_wise + " - spend.mean()"))
    done = subprocess.run(
        [MILEPOST, "check", "consistency"],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "shop_offer" in output and "discounted_spend" in output
    assert "customer_id" in output  # the entity
    assert re.search(r"online -?\d", output) and re.search(r"offline -?\d", output), output
