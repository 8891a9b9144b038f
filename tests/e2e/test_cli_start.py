"""`milepost --help` starts without the services (no pandas, DuckDB or SQLAlchemy) and a
command loads only the services it uses.

A fresh interpreter runs the command line exactly as the console script does and then
lists which heavy modules it loaded. No timing is asserted (the machine decides that);
what is checked is the cause of a slow start, so it fails the day a command module
imports a service at module level again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HEAVY = ("pandas", "duckdb", "sqlalchemy", "pyarrow", "numpy", "milepost._context")
# Rich modules Typer's help module imports but our help never uses (see cli/_help.py)
UNUSED_BY_HELP = ("rich.markdown", "rich.traceback", "markdown_it", "pygments")

PROBE = """
import json, os, sys
if os.environ.get("PROBE_PRELOAD"):
    import importlib
    for name in os.environ["PROBE_PRELOAD"].split(","):
        importlib.import_module(name)
from milepost.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _probe(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run ``milepost ARGS`` in a fresh interpreter; its exit code and the modules it
    loaded (``result["loaded"]``: the heavy ones; ``result["modules"]``: all)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    full_env.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["loaded"] = [m for m in HEAVY if m in result["modules"]]
    return out, result


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["runs", "--help"],
        ["runs", "reap", "--help"],
        ["endpoints", "update", "--help"],
        ["models", "promote", "--help"],
        ["features", "materialize", "--help"],
        ["data", "register", "--help"],
        ["deploy", "canary", "--help"],
        ["runs", "list", "--max", "0"],  # a usage error is found before any service loads
    ],
    ids=" ".join,
)
def test_help_and_usage_errors_load_no_service(args: list[str], tmp_path: Path) -> None:
    out, result = _probe(args, tmp_path)
    assert result["code"] in (0, 2, None), out.stderr
    assert result["loaded"] == [], f"`milepost {' '.join(args)}` loaded {result['loaded']}"
    unused = [m for m in UNUSED_BY_HELP if m in result["modules"]]
    assert unused == [], f"`milepost {' '.join(args)}` loaded {unused}"


def test_the_probe_sees_a_service_when_one_is_loaded(tmp_path: Path) -> None:
    """The check can fail: a command that opens the runtime is seen loading it."""
    out, result = _probe(["db", "current"], tmp_path)
    assert result["code"] in (0, None), out.stderr
    assert {"sqlalchemy", "milepost._context"} <= set(result["loaded"]), result


@pytest.mark.parametrize("args", [["--help"], ["runs", "list", "--help"]], ids=" ".join)
def test_help_reads_the_same_without_the_unused_rich_modules(
    args: list[str], tmp_path: Path
) -> None:
    env = {"COLUMNS": "100"}
    quick, result = _probe(args, tmp_path, env)
    assert "typer.rich_utils" in result["modules"]  # Typer's own help rendered it
    preload = {"PROBE_PRELOAD": "rich.markdown,rich.traceback,typer.rich_utils"}
    full, loaded = _probe(args, tmp_path, env | preload)
    assert "markdown_it" in loaded["modules"]  # the real modules were there this time
    help_text = quick.stdout.rsplit("\n{", 1)[0]  # the probe's JSON line follows
    assert "Usage: milepost" in help_text
    assert help_text == full.stdout.rsplit("\n{", 1)[0]


def test_stand_ins_become_the_real_rich_classes() -> None:
    from rich.markdown import Markdown as RealMarkdown
    from rich.traceback import Traceback as RealTraceback

    from milepost.cli._help import _stand_in

    markdown = _stand_in("rich.markdown", "Markdown")("# title")
    assert isinstance(markdown, RealMarkdown)
    traceback_class = _stand_in("rich.traceback", "Traceback")
    try:
        raise ValueError("boom")
    except ValueError as exc:
        rendered = traceback_class.from_exception(type(exc), exc, exc.__traceback__)
    assert isinstance(rendered, RealTraceback)


def test_a_tracking_command_loads_no_other_service(tmp_path: Path) -> None:
    """`milepost runs list` builds the tracking service only: no serving, no pandas."""
    out, result = _probe(["runs", "list"], tmp_path)
    assert result["code"] in (0, None), out.stderr
    modules = set(result["modules"])
    assert {"milepost.tracking.service", "sqlalchemy"} <= modules
    others = ("milepost.serving", "milepost.models", "milepost.evaluation", "pandas", "fastapi")
    assert [m for m in others if m in modules] == []
    # and a registry command does load what it needs
    out, result = _probe(["models", "list"], tmp_path)
    assert result["code"] in (0, None), out.stderr
    assert "milepost.models.service" in result["modules"]


def test_listing_models_loads_no_numerical_library(tmp_path: Path) -> None:
    """`milepost models list` reads the registry only: the model code (signatures, ONNX
    twins, the trust check) imports NumPy, pandas and scikit-learn when it runs, and the
    data and feature services (PyArrow, pandas) are built only when a command uses them."""
    out, result = _probe(["models", "list"], tmp_path)
    assert result["code"] in (0, None), out.stderr
    modules = set(result["modules"])
    assert {"milepost.models.service", "milepost.models.flavors"} <= modules
    heavy = ("numpy", "pandas", "sklearn", "scipy", "pyarrow", "duckdb", "onnxruntime")
    assert [m for m in heavy if m in modules] == []
    assert [m for m in ("milepost.data.service", "milepost.features.service") if m in modules] == []


def test_a_command_builds_only_its_branch_of_the_tree() -> None:
    from milepost.cli import _command_for, command

    branch = _command_for(["runs", "list", "--json"])
    assert list(branch.commands) == ["runs"]
    assert branch.commands["runs"].commands.keys() == command().commands["runs"].commands.keys()
    assert list(_command_for(["info"]).commands) == ["info"]
    # help, typos and no arguments get the whole tree (its help lists every command)
    for args in (["--help"], ["runz", "list"], []):
        assert _command_for(args) is command()
