"""`milepost models trust ...` and refusals of untrusted models, as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli import cli_in_process

LOG = """
import subprocess
import milepost
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
model = Pipeline([("run", FunctionTransformer(subprocess.run)), ("model", LogisticRegression())])
with milepost.start_run():
    milepost.log_model(model, "shell", flavor="sklearn", trusted_types=["subprocess.run"])
"""

EVALUATE = """
import milepost, pandas as pd
milepost.data.register("rows", pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}))
"""


def test_trust_list_add_remove_and_refusals(tmp_path: Path) -> None:
    alice = {"MILEPOST_USER": "alice"}
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    for script in (LOG, EVALUATE):
        subprocess.run(
            [sys.executable, "-c", script], cwd=tmp_path, check=True, env=environ | alice
        )
    shown = cli_in_process("models", "show", "shell", "1", cwd=tmp_path, env=alice)
    assert "types declared by the author (information only" in shown.stdout
    assert "subprocess.run" in shown.stdout

    refused = cli_in_process(
        "models",
        "evaluate",
        "models:/shell/1",
        "--data",
        "rows@1",
        "--target",
        "y",
        cwd=tmp_path,
        env=alice,
    )
    assert refused.returncode == 1 and "Internal error" not in refused.stderr
    assert "[permission_denied]" in refused.stderr and "'subprocess.run'" in refused.stderr
    assert "milepost models trust add subprocess.run" in refused.stderr

    denied = cli_in_process(
        "models", "trust", "add", "subprocess.run", "--reason", "x", cwd=tmp_path, env=alice
    )
    assert denied.returncode == 1 and "needs the approver or admin role" in denied.stderr
    assert (
        cli_in_process("roles", "grant", "alice", "approver", cwd=tmp_path, env=alice).returncode
        == 0
    )
    added = cli_in_process(
        "models", "trust", "add", "subprocess.run", "--reason", "ops tool", cwd=tmp_path, env=alice
    )
    assert added.returncode == 0, added.stderr
    listed = json.loads(
        cli_in_process("models", "trust", "list", "--json", cwd=tmp_path, env=alice).stdout
    )
    assert [(t["type_name"], t["added_by"], t["reason"]) for t in listed] == [
        ("subprocess.run", "alice", "ops tool")
    ]
    table = cli_in_process("models", "trust", "list", cwd=tmp_path, env=alice).stdout
    assert "subprocess.run" in table and "ops tool" in table
    events = json.loads(
        cli_in_process(
            "audit", "list", "--json", "--object-type", "trusted_type", cwd=tmp_path, env=alice
        ).stdout
    )
    assert any(e["action"] == "trusted_type.add" for e in events)

    removed = cli_in_process(
        "models", "trust", "remove", "subprocess.run", "--reason", "done", cwd=tmp_path, env=alice
    )
    assert removed.returncode == 0, removed.stderr
    missing = cli_in_process("models", "trust", "remove", "subprocess.run", cwd=tmp_path, env=alice)
    assert missing.returncode == 1 and "not on the trusted list" in missing.stderr
    bad = cli_in_process(
        "models", "trust", "add", "not a type", "--reason", "x", cwd=tmp_path, env=alice
    )
    assert bad.returncode == 1 and "is not a type name" in bad.stderr
