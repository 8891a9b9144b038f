"""The commands `milepost check lint|types|tests` run, and a tool that is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from milepost.errors import InvalidInput
from milepost.project import load_project
from milepost.project.tools import (
    Command,
    lint_commands,
    pytest_commands,
    run_commands,
    type_commands,
)
from tests._project import write_project


def test_the_commands_follow_the_projects_settings(tmp_path: Path) -> None:
    fixture = write_project(tmp_path / "proj")
    project = load_project(fixture.root)
    assert [str(c) for c in lint_commands(project)] == [
        "python -m ruff check .",
        "python -m ruff format --check .",
    ]
    assert [str(c) for c in type_commands(project)] == ["python -m mypy"]  # files = ["src"]
    (fixture.root / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    assert [str(c) for c in type_commands(project, ["--strict"])] == ["python -m mypy src --strict"]
    assert pytest_commands(project, "integration", ["-x"])[0].args == ("tests/integration", "-x")
    assert pytest_commands(project)[0].args == ("tests/unit", "tests/integration")
    assert pytest_commands(project)[0].argv()[:3] == [sys.executable, "-m", "pytest"]
    with pytest.raises(InvalidInput, match="No test suite 'smoke'"):
        pytest_commands(project, "smoke")  # type: ignore[arg-type]
    (fixture.root / "tests" / "unit" / "test_unit.py").unlink()
    (fixture.root / "tests" / "unit").rmdir()
    with pytest.raises(InvalidInput, match="tests/unit does not exist"):
        pytest_commands(project, "unit")


def test_a_tool_missing_from_this_python_says_how_to_install_it(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path / "proj").root)
    with pytest.raises(InvalidInput) as exc:
        run_commands(project, [Command("ruff", ("check",)), Command("no_such_tool_xyz", ())])
    assert exc.value.message == (
        f"no_such_tool_xyz is not installed where milepost runs ({sys.executable})."
    )
    assert "pip install -e '.[dev]'" in (exc.value.hint or "")


def test_a_check_that_compared_only_nulls_says_so() -> None:
    from milepost.cli._output import console
    from milepost.cli.check import print_consistency
    from milepost.features.consistency import ConsistencyReport

    empty = ConsistencyReport("activity:v1", 3, "2026-05-31T00:00:01+00:00", {"spend": 0})
    full = ConsistencyReport("activity:v1", 3, "2026-05-31T00:00:01+00:00", {"spend": 0})
    full.with_values = 3
    with console.capture() as captured:
        print_consistency(empty)
        print_consistency(full)
    lines = captured.get().splitlines()
    assert lines[0].startswith("activity:v1: 3 entities at 2026-05-31T00:00:01+00:00 (0 with")
    assert "only nulls were compared" in lines[0]
    assert lines[1].endswith("(3 with values online): consistent")
