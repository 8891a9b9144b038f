"""`milepost --help` starts without the services: no pandas, DuckDB or SQLAlchemy.

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

PROBE = """
import json, sys
from milepost.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "loaded": sorted(m for m in HEAVY if m in sys.modules)}))
""".replace("HEAVY", repr(HEAVY))


def _probe(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run ``milepost ARGS`` in a fresh interpreter; its exit code and heavy modules."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return out, json.loads(out.stdout.strip().splitlines()[-1])


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


def test_the_probe_sees_a_service_when_one_is_loaded(tmp_path: Path) -> None:
    """The check can fail: a command that opens the runtime is seen loading it."""
    out, result = _probe(["db", "current"], tmp_path)
    assert result["code"] in (0, None), out.stderr
    assert {"sqlalchemy", "milepost._context"} <= set(result["loaded"]), result
