"""``--help`` of every command reads as people write commands.

The command tree is walked from the CLI itself (groups and commands), so a new command
is checked the day it is added: every argument and option has help text, values are
named as people write them (``TEXT``, ``INTEGER``, ``PATH``), flags show no value, and
no Python-ism (``<str>``, ``<int range>``, ``<bool>``, ``{name}``) reaches the screen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from milepost.cli import command, main


def _nodes(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, cmd
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from _nodes(sub, [*path, name])


NODES = list(_nodes(command(), []))
LEAVES = [(p, c) for p, c in NODES if not getattr(c, "commands", None)]
PYTHON_TYPES = re.compile(r"<(str|int|float|bool|list|path|Path|datetime|tuple)\b[^>]*>")


def _help(path: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code: Any = 0
    try:
        main([*path, "--help"])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code in (0, None), (path, out, err)
    assert not err.strip(), (path, err)
    return out


@pytest.mark.parametrize(("path", "cmd"), NODES, ids=[" ".join(p) or "milepost" for p, _ in NODES])
def test_help_has_no_python_types_or_placeholders(
    path: list[str], cmd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _help(path, capsys)
    assert "Usage: milepost" in out
    assert not PYTHON_TYPES.search(out), (path, PYTHON_TYPES.findall(out), out)
    assert "{" not in out and "}" not in out, (path, out)
    assert "BOOLEAN" not in out, (path, out)  # a flag takes no value


@pytest.mark.parametrize(("path", "cmd"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_argument_and_option_is_explained(
    path: list[str], cmd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = [p.name for p in cmd.params if not (getattr(p, "help", None) or "").strip()]
    assert not missing, f"`milepost {' '.join(path)}`: no help for {missing}"
    out = _help(path, capsys)
    for param in cmd.params:
        if param.param_type_name == "argument":
            # the usage line names it as typed: ENDPOINT, [VERSION], RUN_ID...
            assert param.metavar and param.metavar == param.metavar.upper(), (path, param.name)
            assert param.metavar in out, (path, param.metavar, out)


def test_values_are_named_as_people_write_them(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(["endpoints", "serve"], capsys)
    assert "Usage: milepost endpoints serve [OPTIONS] ENDPOINT" in out
    assert re.search(r"--port\s+INTEGER \[0<=x<=65535\]", out), out
    assert re.search(r"--host\s+TEXT", out), out
    out = _help(["endpoints", "update"], capsys)
    assert "Usage: milepost endpoints update [OPTIONS] ENDPOINT [VERSION]" in out
    assert re.search(r"--strategy\s+STRATEGY", out), out
    out = _help(["runs", "list"], capsys)
    assert re.search(r"--json\s+Print JSON", out), out  # a flag: no value in between
    assert re.search(r"--max\s+INTEGER \[1<=x<=50000\]", out), out
    out = _help(["runs", "compare"], capsys)
    assert "Usage: milepost runs compare [OPTIONS] RUN_ID..." in out
    out = _help(["models", "show"], capsys)
    assert "Usage: milepost models show [OPTIONS] NAME [VERSION]" in out
    assert "x>=1" in out and "9223372036854775807" not in out


def test_every_paragraph_of_a_description_is_reflowed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = _help(["audit", "verify"], capsys)
    # the docstring's second paragraph breaks after "guards."'s line; on screen it is one
    # paragraph filled to the width, not the source's line breaks plus the screen's
    assert "traffic, roles and promotion requests" in out, out
