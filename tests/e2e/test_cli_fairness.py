"""`milepost fairness ...` as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sklearn.tree import DecisionTreeClassifier

import milepost
from tests.e2e.test_cli import cli_in_process

ENV = {"MILEPOST_USER": "alice"}


def _setup(tmp_path: Path) -> None:
    """loans v1 predicts ``x``; audit@1 has a known bias on gender and a small group c."""
    milepost.configure(cwd=tmp_path, user="alice")
    y = [1] * 20 + [0] * 20
    frame = pd.DataFrame(
        {
            "gender": ["a"] * 40 + ["b"] * 40 + ["c"] * 6,
            "x": [1] * 16
            + [0] * 4
            + [1] * 4
            + [0] * 16  # a: selection 0.5
            + [1] * 8
            + [0] * 12
            + [1] * 2
            + [0] * 18  # b: selection 0.25
            + [1, 0, 0, 1, 0, 0],  # c: selection 1/3
            "y": y + y + [1, 1, 1, 0, 0, 0],
        }
    )
    milepost.data.register("audit", frame)
    train = pd.DataFrame({"x": [0, 1] * 10})
    with milepost.start_run(experiment="cli"):
        milepost.log_model(
            DecisionTreeClassifier(max_depth=1).fit(train, train["x"]),
            "loans",
            input_example=train.head(3),
        )
    milepost.reset()


def test_audit_list_and_show_from_the_command_line(tmp_path: Path) -> None:
    _setup(tmp_path)
    args = ["--data", "audit@1", "--target", "y", "--sensitive", "gender"]
    run = cli_in_process(
        "fairness", "audit", "models:/loans/1", *args, "--min-group-size", "10",
        cwd=tmp_path, env=ENV,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "models:/loans/1 on audit@1 (86 rows, target y, positive label 1" in out
    # the summary (DP ratio 0.25 / 0.5) and the per-group table, the small group flagged
    assert "DP ratio" in out and "0.500" in out and "0.250" in out
    assert "unreliable: 6 rows, 3 positives, 3 negatives < 10" in out
    assert "1 group(s) flagged unreliable" in out
    as_json = cli_in_process(
        "fairness", "audit", "models:/loans/1", *args, "--json", cwd=tmp_path, env=ENV
    )
    result = json.loads(as_json.stdout)
    assert result["model"] == "models:/loans/1" and result["dataset"] == "audit@1"
    assert result["summary"]["gender"]["demographic_parity_ratio"] == 0.5
    assert result["unreliable_groups"] == ["gender=a", "gender=b", "gender=c"]  # default 30
    listed = cli_in_process("fairness", "list", "models:/loans/1", cwd=tmp_path, env=ENV)
    assert listed.returncode == 0 and result["audit_id"][:12] in listed.stdout
    audits = json.loads(
        cli_in_process(
            "fairness", "list", "models:/loans/1", "--json", cwd=tmp_path, env=ENV
        ).stdout
    )
    assert audits[0]["audit_id"] == result["audit_id"] and len(audits) == 2
    shown = cli_in_process("fairness", "show", result["audit_id"][:12], cwd=tmp_path, env=ENV)
    assert shown.returncode == 0 and f"audit {result['audit_id'][:12]}" in shown.stdout
    events = cli_in_process("audit", "verify", cwd=tmp_path, env=ENV)
    assert events.returncode == 0, events.stdout + events.stderr


def test_mistakes_get_a_clear_message(tmp_path: Path) -> None:
    _setup(tmp_path)
    run = cli_in_process(
        "fairness", "audit", "models:/loans/1", "--data", "audit@1", "--target", "y",
        "--sensitive", "gendr", cwd=tmp_path, env=ENV,
    )  # fmt: skip
    assert run.returncode == 1
    assert "no sensitive feature 'gendr'" in run.stderr and "gender" in run.stderr
    assert "Traceback" not in run.stderr
    usage = cli_in_process(
        "fairness", "audit", "models:/loans/1", "--data", "audit@1", "--target", "y",
        cwd=tmp_path, env=ENV,
    )  # fmt: skip
    assert usage.returncode == 2 and "--sensitive" in usage.stderr
    empty = cli_in_process("fairness", "list", "models:/loans/1", cwd=tmp_path, env=ENV)
    assert "No fairness audits of models:/loans/1 yet" in empty.stdout
    missing = cli_in_process("fairness", "show", "abcd1234", cwd=tmp_path, env=ENV)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
