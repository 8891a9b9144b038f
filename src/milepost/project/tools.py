"""``milepost check lint|types|tests``: the project's own ruff, mypy and pytest.

Each runs ``sys.executable -m TOOL`` (the Python that has Milepost and the project
installed, so CI and a laptop run the same tool versions) in the project's root, with the
project's configuration (``[tool.ruff]``, ``[tool.mypy]``, ``[tool.pytest.ini_options]``
of its ``pyproject.toml``); the tool's output streams through and its exit code is the
command's:

- ``lint``: ``ruff check .`` then ``ruff format --check .`` (both run; the first
  failure's code is returned);
- ``types``: ``mypy`` (its ``files`` setting, else ``src`` when it exists, else ``.``);
- ``tests``: ``pytest`` on the ``unit_tests`` and/or ``integration_tests`` directories
  of ``[project]``.

Extra arguments (after ``--`` on the command line) are appended to mypy's and pytest's.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from milepost.project.config import Project

__all__ = ["Command", "lint_commands", "pytest_commands", "run_commands", "type_commands"]

Suite = Literal["unit", "integration", "all"]


@dataclass(frozen=True)
class Command:
    """``python -m MODULE ARGS...`` in the project's root."""

    module: str
    args: tuple[str, ...]

    def argv(self) -> list[str]:
        """The full command line, starting with this Python."""
        return [sys.executable, "-m", self.module, *self.args]

    def __str__(self) -> str:
        return " ".join(["python", "-m", self.module, *self.args])


def lint_commands(project: Project) -> list[Command]:
    """``ruff check .`` and ``ruff format --check .``."""
    return [Command("ruff", ("check", ".")), Command("ruff", ("format", "--check", "."))]


def type_commands(project: Project, extra: Sequence[str] = ()) -> list[Command]:
    """``mypy`` on its configured ``files``, else ``src`` (or the root)."""
    targets: tuple[str, ...] = ()
    if not _mypy_files(project):
        targets = ("src",) if (project.root / "src").is_dir() else (".",)
    return [Command("mypy", (*targets, *extra))]


def pytest_commands(
    project: Project, suite: Suite = "all", extra: Sequence[str] = ()
) -> list[Command]:
    """``pytest`` on the suite's directories.

    Raises:
        InvalidInput: an unknown suite, or a test directory that does not exist.
    """
    dirs = {"unit": [project.config.unit_tests], "integration": [project.config.integration_tests]}
    dirs["all"] = dirs["unit"] + dirs["integration"]
    if suite not in dirs:
        raise InvalidInput(
            f"No test suite {suite!r}.", hint="Use unit, integration or all (the default)."
        )
    for relative in dirs[suite]:
        if not (project.root / relative).is_dir():
            raise InvalidInput(
                f"The test directory {relative} does not exist in {project.root}.",
                hint="Create it, or point unit_tests / integration_tests in [project] at yours.",
            )
    return [Command("pytest", (*dirs[suite], *extra))]


def run_commands(
    project: Project,
    commands: Sequence[Command],
    *,
    announce: Callable[[Command], None] | None = None,
) -> int:
    """Run each command in the project's root, output streaming through; the first
    non-zero exit code (0 when every one passed). Every command runs.

    Raises:
        InvalidInput: a tool is not installed where Milepost runs (nothing is run).
    """
    for module in dict.fromkeys(c.module for c in commands):
        if importlib.util.find_spec(module) is None:
            raise InvalidInput(
                f"{module} is not installed where milepost runs ({sys.executable}).",
                hint="pip install -e '.[dev]' (the project's dev extra brings ruff, mypy "
                "and pytest).",
            )
    code = 0
    for command in commands:
        if announce is not None:
            announce(command)
        done = subprocess.run(command.argv(), cwd=project.root, check=False)
        code = code or done.returncode
    return code


def _mypy_files(project: Project) -> bool:
    for name, table in (("pyproject.toml", ("tool", "mypy")), ("mypy.ini", None)):
        path = project.root / name
        if not path.is_file():
            continue
        if table is None:
            return "files" in path.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return False  # mypy says what is wrong with it
        section = data.get("tool", {}).get("mypy", {})
        return isinstance(section, dict) and bool(section.get("files"))
    return False
