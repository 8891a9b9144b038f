"""`milepost init` / :func:`milepost.project.scaffold`: the files, refusals, names."""

from __future__ import annotations

import ast
import io
import os
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml

from milepost.errors import AlreadyExists, InvalidInput
from milepost.project import load_project
from milepost.project.scaffold import (
    MAIN_COMMANDS,
    PR_COMMANDS,
    TEMPLATES,
    next_steps,
    package_name,
    scaffold,
)
from milepost.promotion import MetricVsBaseline, PromotionPolicy

FILES = [
    "milepost.toml",
    "pyproject.toml",
    "README.md",
    "policy.yaml",
    "triggers.yaml",
    ".pre-commit-config.yaml",
    ".gitignore",
    ".github/workflows/pr.yml",
    ".github/workflows/main.yml",
    ".gitlab-ci.yml",
    "src/churn_project/__init__.py",
    "src/churn_project/py.typed",
    "src/churn_project/data.py",
    "src/churn_project/features.py",
    "src/churn_project/train.py",
    "src/churn_project/pipeline.py",
    "tests/__init__.py",
    "tests/unit/__init__.py",
    "tests/integration/__init__.py",
    "tests/unit/test_features.py",
    "tests/unit/test_train.py",
    "tests/integration/test_pipeline.py",
]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    """``milepost ARGS`` in this process (the same parser and exit codes)."""
    from milepost.cli import main

    out, err, saved = io.StringIO(), io.StringIO(), Path.cwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        os.chdir(saved)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_writes_every_file_of_both_templates(tmp_path: Path, template: str) -> None:
    root = tmp_path / "churn-project"
    written = scaffold(root, template=template)
    assert [p.relative_to(root).as_posix() for p in written] == FILES
    assert sorted(_tree(root)) == sorted(FILES)
    spec = TEMPLATES[template]
    for path in written:
        text = path.read_text()
        assert "{{" not in text.replace("${{", "") and "{%" not in text, path  # all rendered
        if path.suffix == ".py":
            ast.parse(text, filename=str(path))
        if path.suffix in (".yml", ".yaml"):
            assert yaml.safe_load(text), path
    policy = PromotionPolicy.from_yaml(root / "policy.yaml")
    (gate,) = policy.production
    assert isinstance(gate, MetricVsBaseline)
    assert gate.primary == spec.metric
    assert gate.target == spec.target
    assert policy.deploy.automatic and policy.deploy.endpoint == "churn-project"
    data = (root / "src/churn_project/data.py").read_text()
    assert f'TARGET = "{spec.target}"' in data
    train = (root / "src/churn_project/train.py").read_text()
    other = "Regressor" if template == "classification" else "Classifier"
    assert other not in train


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_the_project_table_loads(tmp_path: Path, template: str) -> None:
    scaffold(tmp_path / "spend-forecast", template=template)
    project = load_project(tmp_path / "spend-forecast" / "src")  # found from a subdirectory
    config = project.config
    assert project.root == tmp_path / "spend-forecast"
    assert (config.name, config.package, config.template) == (
        "spend-forecast",
        "spend_forecast",
        template,
    )
    assert (config.model, config.endpoint, config.staging_endpoint) == (
        "spend-forecast",
        "spend-forecast",
        "spend-forecast-staging",
    )
    assert config.target == TEMPLATES[template].target
    assert config.labels == "spend_forecast.labels"
    assert config.pipeline == "spend_forecast.pipeline:release"
    assert config.train == "spend_forecast.train:fit"
    assert config.sample_data == "spend_forecast.data:sample"
    assert project.feature_repo == "spend_forecast.features"
    for relative in (config.policy, config.triggers, config.unit_tests, config.integration_tests):
        assert (project.root / str(relative)).exists(), relative


def test_refuses_existing_files_listing_them_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "churn-project"
    (root / "src/churn_project").mkdir(parents=True)
    (root / "README.md").write_text("mine\n")
    (root / "src/churn_project/train.py").write_text("# mine\n")
    (root / "notes.txt").write_text("unrelated\n")
    before = _tree(root)
    with pytest.raises(AlreadyExists) as caught:
        scaffold(root)
    message = str(caught.value)
    assert "2 file(s)" in message and "nothing was written" in message
    assert "README.md" in message and "src/churn_project/train.py" in message
    assert "--force overwrites them" in message
    assert _tree(root) == before


def test_force_overwrites_and_keeps_other_files(tmp_path: Path) -> None:
    root = tmp_path / "churn-project"
    scaffold(root)
    (root / "README.md").write_text("mine\n")
    (root / "notes.txt").write_text("unrelated\n")
    scaffold(root, force=True)
    assert (root / "README.md").read_text().startswith("# churn-project\n")
    assert (root / "notes.txt").read_text() == "unrelated\n"


def test_name_defaults_to_the_directory_and_may_be_given(tmp_path: Path) -> None:
    scaffold(tmp_path / "demand", name="demand-model")
    config = load_project(tmp_path / "demand").config
    assert (config.name, config.package) == ("demand-model", "demand_model")
    assert (tmp_path / "demand/src/demand_model/pipeline.py").is_file()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("1churn", "starts with a letter"),
        ("churn project", "letters, digits, '-' and '_'"),
        ("churn.project", "letters, digits, '-' and '_'"),
        ("x" * 41, "at most 40 characters"),
        ("class", "a Python keyword"),
        ("json", "a standard-library module"),
        ("milepost", "Milepost itself"),
    ],
)
def test_refuses_names_that_cannot_be_a_package(tmp_path: Path, name: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        scaffold(tmp_path / "p", name=name)
    assert not (tmp_path / "p").exists()


def test_package_name() -> None:
    assert package_name("churn-project") == "churn_project"
    assert package_name("Churn_2") == "Churn_2"


def test_refuses_an_unknown_template_and_a_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"Unknown template 'regresion'.*'regression'"):
        scaffold(tmp_path / "p", template="regresion")
    (tmp_path / "f").write_text("")
    with pytest.raises(InvalidInput, match="is a file"):
        scaffold(tmp_path / "f")


def test_main_commands_name_the_project(tmp_path: Path) -> None:
    root = tmp_path / "churn-project"
    scaffold(root)
    workflow = yaml.safe_load((root / ".github/workflows/main.yml").read_text())
    runs = [s["run"] for s in workflow["jobs"]["release"]["steps"] if "run" in s]
    assert runs == [
        c.format(
            package="churn_project",
            staging_endpoint="churn-project-staging",
            endpoint="churn-project",
        )
        for c in MAIN_COMMANDS
    ]
    assert "milepost pipelines run churn_project.pipeline:release" in runs


def test_cli_init_prints_files_and_next_steps(tmp_path: Path) -> None:
    code, out, err = _cli("init", "shop", "--template", "regression", cwd=tmp_path)
    assert code == 0, err
    assert "Created a regression project in shop:" in out
    assert "  src/shop/pipeline.py" in out and "  .github/workflows/pr.yml" in out
    assert "  cd shop" in out
    for command in PR_COMMANDS:
        assert f"  {command}" in out
    assert load_project(tmp_path / "shop").config.template == "regression"

    code, out, err = _cli("init", "shop", cwd=tmp_path)
    assert code == 1 and out == ""
    assert "exist in shop" in err and "--force overwrites them" in err
    code, _, err = _cli("init", "shop", "--force", cwd=tmp_path)
    assert code == 0, err
    assert load_project(tmp_path / "shop").config.template == "classification"


def test_cli_init_in_the_current_directory(tmp_path: Path) -> None:
    here = tmp_path / "fraud-scores"
    here.mkdir()
    code, out, err = _cli("init", cwd=here)
    assert code == 0, err
    assert "cd " not in out
    assert load_project(here).config.package == "fraud_scores"
    assert next_steps(".") == list(PR_COMMANDS)


def test_init_does_not_import_the_template_engine_for_help() -> None:
    """`milepost --help` stays light: the init command imports Jinja2 when it runs."""
    code = (
        "import sys, milepost.cli.init; "
        "assert 'jinja2' not in sys.modules and 'sqlalchemy' not in sys.modules"
    )
    import sys

    subprocess.run([sys.executable, "-c", code], check=True)
