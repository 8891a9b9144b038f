"""Every usage error of every command is one line on stderr and exit 2, never a traceback.

The command tree is walked from the Typer app, so a new command is covered the day it
is added. Each case calls ``milepost.cli.main`` (what the console script runs) in this
process; one case runs the real console script to pin the end-to-end behaviour.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from milepost.cli import app, main

MILEPOST = str(Path(sys.executable).parent / "milepost")


def _leaves(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in sorted(subs.items()):
            yield from _leaves(sub, [*path, name])
    else:
        yield path, command


COMMANDS = list(_leaves(typer.main.get_command(app), []))


def _hints(command: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(command.callback)
    return {
        k: typing.get_args(v)[0] if typing.get_origin(v) is typing.Union else v
        for k, v in hints.items()
    }


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    return int(info.value.code or 0), err


def _assert_usage_error(code: int, err: str, argv: list[str]) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (argv, code, err)
    assert "Traceback" not in err and "Internal error" not in err, (argv, err)
    assert len(lines) == 1, (argv, err)
    assert lines[0].startswith("Error: ") and "--help" in lines[0], (argv, err)


def _ids(commands: list[tuple[list[str], Any]]) -> list[str]:
    return [" ".join(p) for p, _ in commands]


WITH_REQUIRED = [(p, c) for p, c in COMMANDS if any(x.required for x in c.params)]
WITH_INTEGERS = [(p, c) for p, c in COMMANDS if int in _hints(c).values()]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=_ids(COMMANDS))
def test_unknown_option_is_one_line(
    path: list[str], command: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*path, "--no-such-option-here"]
    _assert_usage_error(*_run(argv, capsys), argv)


@pytest.mark.parametrize(("path", "command"), WITH_REQUIRED, ids=_ids(WITH_REQUIRED))
def test_missing_arguments_are_one_line(
    path: list[str], command: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _assert_usage_error(*_run(path, capsys), path)


@pytest.mark.parametrize(("path", "command"), WITH_INTEGERS, ids=_ids(WITH_INTEGERS))
def test_bad_integers_are_one_line(
    path: list[str], command: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    hints = _hints(command)
    for param in (p for p in command.params if hints.get(p.name) is int):
        argv = list(path)
        # fill required positionals before the integer with plausible text
        for other in command.params:
            if other is param:
                break
            if not other.opts[0].startswith("-") and other.required:
                argv.append("1" if hints.get(other.name) is int else "x")
        argv += [param.opts[0], "abc"] if param.opts[0].startswith("-") else ["abc"]
        _assert_usage_error(*_run(argv, capsys), argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["endpoints", "serve", "ep", "--port", "70000"],
        ["features", "serve", "--port", "65536"],
        ["endpoints", "serve", "ep", "--port", "-1"],
        ["serve", "ep", "--port", "70000"],  # the hidden old name parses the same
    ],
)
def test_ports_out_of_range_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    _assert_usage_error(*_run(argv, capsys), argv)


def test_console_script_prints_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    for argv in (["experiments", "list", "--bogus-option"], ["data", "show"], ["nosuch"]):
        out = subprocess.run(
            [MILEPOST, *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        _assert_usage_error(out.returncode, out.stderr, argv)
