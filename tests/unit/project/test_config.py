"""The [project] table of milepost.toml: load_project and its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from milepost.config import load_settings
from milepost.errors import ConfigError
from milepost.project import load_project
from tests._project import write_project


def test_the_project_is_found_from_a_subdirectory_and_settings_ignore_the_table(
    tmp_path: Path,
) -> None:
    fixture = write_project(tmp_path / "proj")
    project = load_project(fixture.root / "src")
    assert project.root == fixture.root
    assert project.config.model == fixture.model
    assert project.config.sample_data == f"{fixture.package}.data:sample"
    assert project.config.unit_tests == "tests/unit"  # a default
    assert project.feature_repo == f"{fixture.package}.features"  # a module, as written
    assert project.path("policy.yaml") == fixture.root / "policy.yaml"
    assert project.path(None) is None
    settings = load_settings(cwd=fixture.root)
    assert settings.settings.feature_repo == f"{fixture.package}.features"


def test_no_project_file_or_no_table_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a Milepost project") as exc:
        load_project(tmp_path)
    assert "milepost init" in (exc.value.hint or "")
    (tmp_path / "milepost.toml").write_text('experiment = "x"\n')
    with pytest.raises(ConfigError, match=r"has no \[project\] table"):
        load_project(tmp_path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('colour = "blue"', r"\[project\] colour: Extra inputs are not permitted"),
        ('pipeline = "pkg.pipeline"', r"\[project\] pipeline: .*not module:attr"),
        ('package = "my-pkg"', r"\[project\] package: .*not an importable package name"),
        ('template = "clustering"', r"\[project\] template"),
    ],
)
def test_a_wrong_key_or_value_is_named_with_the_file(
    tmp_path: Path, line: str, message: str
) -> None:
    fixture = write_project(tmp_path / "proj")
    toml = fixture.root / "milepost.toml"
    key = line.split(" = ", maxsplit=1)[0]
    kept = [x for x in toml.read_text().splitlines() if not x.startswith(f"{key} = ")]
    toml.write_text("\n".join([*kept, line]) + "\n")
    with pytest.raises(ConfigError, match=message) as exc:
        load_project(fixture.root)
    assert str(toml) in exc.value.message
