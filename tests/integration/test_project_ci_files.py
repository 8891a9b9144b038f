"""The CI files `milepost init` writes pass the tools CI providers and pre-commit use,
offline: actionlint (GitHub Actions), GitLab's CI schema (vendored in check-jsonschema)
and pre-commit's own validation. Each check is shown to fail on a broken copy, so a
pass means something. GitHub and GitLab run the same command lists; the generated
Python passes the project's own ruff settings and its unit tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import milepost
from milepost.project.scaffold import MAIN_COMMANDS, PR_COMMANDS, TEMPLATES, scaffold

BIN = Path(sys.executable).parent
LONGEST = "a" + "b" * 39  # the longest name a project may have


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():  # a dev dependency (pip install -e '.[dev]')
        pytest.fail(f"{name} is not installed next to {sys.executable}: pip install -e '.[dev]'")
    return str(path)


def _run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, check=False, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both templates, under a usual name and under the longest name allowed."""
    base = tmp_path_factory.mktemp("projects")
    out = {}
    for template in TEMPLATES:
        out[template] = base / f"{template}-project"
        scaffold(out[template], template=template)
        scaffold(base / f"{template}-{LONGEST}", template=template, name=LONGEST)
    return out


def _broken(source: Path, copy: Path, old: str, new: str) -> Path:
    """A copy of ``source`` with ``old`` replaced (which must be in it)."""
    text = source.read_text()
    assert old in text, f"{old!r} is not in {source}"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(text.replace(old, new))
    return copy


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_actionlint_passes_the_workflows(projects: dict[str, Path], template: str) -> None:
    root = projects[template]
    done = _run(
        _tool("actionlint"), ".github/workflows/pr.yml", ".github/workflows/main.yml", cwd=root
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_fails_a_broken_workflow(projects: dict[str, Path], tmp_path: Path) -> None:
    workflow = projects["classification"] / ".github/workflows/pr.yml"
    _broken(workflow, tmp_path / ".github/workflows/pr.yml", "pull_request:", "pull_requests:")
    done = _run(_tool("actionlint"), ".github/workflows/pr.yml", cwd=tmp_path)
    assert done.returncode == 1
    assert "pull_requests" in done.stdout


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_gitlab_schema_passes(projects: dict[str, Path], template: str) -> None:
    done = _run(
        _tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", ".gitlab-ci.yml",
        cwd=projects[template],
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_gitlab_schema_fails_a_broken_file(projects: dict[str, Path], tmp_path: Path) -> None:
    source = projects["classification"] / ".gitlab-ci.yml"
    broken = _broken(source, tmp_path / ".gitlab-ci.yml", "  stage: release\n", "  stage: [1]\n")
    done = _run(
        _tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(broken),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "stage" in done.stdout + done.stderr


def test_pre_commit_validates_the_config(projects: dict[str, Path], tmp_path: Path) -> None:
    config = projects["classification"] / ".pre-commit-config.yaml"
    done = _run(_tool("pre-commit"), "validate-config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    hooks = yaml.safe_load(config.read_text())["repos"][0]["hooks"]
    assert [h["entry"] for h in hooks] == [
        "python -m ruff check --fix",
        "python -m ruff format",
        "milepost check project",
    ]
    assert {h["language"] for h in hooks} == {"system"}

    broken = _broken(config, tmp_path / "broken.yaml", "language: system", "language: nonsense")
    done = _run(_tool("pre-commit"), "validate-config", str(broken), cwd=tmp_path)
    assert done.returncode == 1
    assert "nonsense" in done.stdout + done.stderr


def _github_runs(path: Path, job: str) -> list[str]:
    steps = yaml.safe_load(path.read_text())["jobs"][job]["steps"]
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert uses == ["actions/checkout", "actions/setup-python"]  # the only other steps
    return [s["run"] for s in steps if "run" in s]


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_github_and_gitlab_run_the_same_commands(projects: dict[str, Path], template: str) -> None:
    root = projects[template]
    package = f"{template}_project"
    main = [
        c.format(
            package=package,
            endpoint=f"{template}-project",
            staging_endpoint=f"{template}-project-staging",
        )
        for c in MAIN_COMMANDS
    ]
    gitlab = yaml.safe_load((root / ".gitlab-ci.yml").read_text())
    assert _github_runs(root / ".github/workflows/pr.yml", "checks") == list(PR_COMMANDS)
    assert gitlab["checks"]["script"] == list(PR_COMMANDS)
    assert _github_runs(root / ".github/workflows/main.yml", "release") == main
    assert gitlab["release"]["script"] == main
    # when each runs: pull/merge requests, and the main/default branch
    pr = yaml.safe_load((root / ".github/workflows/pr.yml").read_text())
    release = yaml.safe_load((root / ".github/workflows/main.yml").read_text())
    assert list(pr[True]) == ["pull_request"]  # YAML 1.1 reads the key `on` as True
    assert release[True] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    assert release["concurrency"]["cancel-in-progress"] is False
    assert set(release["env"]) == {"MILEPOST_URL", "MILEPOST_TOKEN"}
    assert gitlab["checks"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert gitlab["release"]["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]


def test_generated_code_passes_its_own_ruff_settings(projects: dict[str, Path]) -> None:
    roots = sorted(projects["classification"].parent.iterdir())
    assert len(roots) == 4
    for root in roots:
        for args in (("check", "."), ("format", "--check", ".")):
            done = _run(_tool("ruff"), *args, cwd=root)
            assert done.returncode == 0, f"{root.name}: ruff {' '.join(args)}\n{done.stdout}"


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_generated_unit_tests_pass(projects: dict[str, Path], template: str) -> None:
    """The project's unit tests need no Milepost store and no install (pytest's
    ``pythonpath`` finds the package in src/)."""
    root = projects[template]
    env = {**os.environ, "PYTHONPATH": str(Path(milepost.__file__).parents[1])}
    done = _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit",
                cwd=root, env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 passed" in done.stdout


def test_the_regression_release_runs_in_a_sandbox(projects: dict[str, Path]) -> None:
    """The generated integration test of the regression template (the e2e test covers
    classification's through its CI): the release twice on the sample data, gated on
    r2, in a sandbox; nothing installed."""
    root = projects["regression"]
    env = {**os.environ, "PYTHONPATH": str(Path(milepost.__file__).parents[1])}
    env = {k: v for k, v in env.items() if not k.startswith("MILEPOST_")}
    done = _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "tests/integration", cwd=root, env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
