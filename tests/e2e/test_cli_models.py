"""`milepost models ...` and `milepost roles ...` as a user types them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli import cli_in_process

TRAIN = """
import milepost
from sklearn.linear_model import LogisticRegression
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline
from milepost.demo.data import generate_customers, NUMERIC, CATEGORICAL, LABEL
from milepost.demo.training import preprocess as _preprocess
df = generate_customers(1500, seed=3)
milepost.data.register("churn.test", df.iloc[1000:])
train = milepost.data.register("churn.train", df.iloc[:1000])
X = df[NUMERIC + CATEGORICAL]
for model in (DummyClassifier(strategy="prior"), LogisticRegression(max_iter=500)):
    pipe = Pipeline([("prep", _preprocess(True)), ("model", model)]).fit(X[:1000], df[LABEL][:1000])
    with milepost.start_run(experiment="cli"):
        milepost.log_input(train, role="train")
        milepost.log_model(pipe, "churn", input_example=X.head(3))
"""

POLICY = """
production:
  - {kind: metric_vs_baseline, dataset: churn.test@1, target: churned, threshold: 0.4,
     min_delta: 0.01}
  - {kind: approval}
"""


def test_registry_and_promotion_from_the_command_line(tmp_path: Path) -> None:
    env = {"MILEPOST_USER": "alice"}
    subprocess.run(
        [sys.executable, "-c", TRAIN],
        cwd=tmp_path,
        check=True,
        env={**__import__("os").environ, **env},
    )
    listed = json.loads(cli_in_process("models", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert listed[0]["name"] == "churn" and listed[0]["latest_version"] == 2
    shown = cli_in_process("models", "show", "churn", "2", cwd=tmp_path, env=env)
    assert "inputs: age:integer" in shown.stdout and "churn.train@1 (train)" in shown.stdout
    (tmp_path / "policy.yaml").write_text(POLICY)
    assert (
        cli_in_process(
            "models", "policy", "churn", "--set", "policy.yaml", cwd=tmp_path, env=env
        ).returncode
        == 0
    )
    assert cli_in_process("roles", "grant", "alice", "admin", cwd=tmp_path, env=env).returncode == 0
    assert (
        cli_in_process("roles", "grant", "bob", "approver", cwd=tmp_path, env=env).returncode == 0
    )
    denied = cli_in_process(
        "roles", "grant", "eve", "approver", cwd=tmp_path, env={"MILEPOST_USER": "eve"}
    )
    assert denied.returncode == 1 and "needs the admin role" in denied.stderr

    out = cli_in_process(
        "models", "promote", "churn", "1", "--to", "Production", cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "Waiting for approval" in out.stdout
    pending = json.loads(
        cli_in_process("promotions", "list", "--json", cwd=tmp_path, env=env).stdout
    )
    request = pending[0]["request_id"]
    # the old name lists the same; show gives the one request, by a prefix of its id
    old_name = cli_in_process("models", "requests", "--json", cwd=tmp_path, env=env)
    assert json.loads(old_name.stdout) == pending
    shown = cli_in_process("promotions", "show", request[:12], "--json", cwd=tmp_path, env=env)
    assert json.loads(shown.stdout) == pending[0]
    text = cli_in_process("promotions", "show", request[:12], cwd=tmp_path, env=env).stdout
    assert f"request {request}: churn v1 -> Production" in " ".join(text.split())
    assert "Waiting for approval" in text
    self_approve = cli_in_process("promotions", "approve", request[:12], cwd=tmp_path, env=env)
    assert self_approve.returncode == 1 and "needs the 'approver' role" in self_approve.stderr
    approved = cli_in_process(
        "promotions",
        "approve",
        request[:12],
        "--reason",
        "ok",
        cwd=tmp_path,
        env={"MILEPOST_USER": "bob"},
    )
    assert approved.returncode == 0 and "now in Production" in approved.stdout

    # v2 (the real model) beats the know-nothing v1
    out = cli_in_process(
        "models", "promote", "churn", "2", "--to", "Production", cwd=tmp_path, env=env
    )
    assert "Waiting for approval" in out.stdout
    request = json.loads(
        cli_in_process("promotions", "list", "--json", cwd=tmp_path, env=env).stdout
    )[0]
    rejected = cli_in_process(
        "promotions",
        "reject",
        request["request_id"][:12],
        "--reason",
        "not yet",
        cwd=tmp_path,
        env={"MILEPOST_USER": "bob"},
    )
    assert rejected.returncode == 0 and "rejected" in rejected.stdout

    # an archived version cannot jump back to Production without a new review
    cli_in_process("models", "archive", "churn", "2", cwd=tmp_path, env=env)
    refused = cli_in_process(
        "models", "promote", "churn", "2", "--to", "Production", cwd=tmp_path, env=env
    )
    assert refused.returncode == 1
    assert "re-reviewed" in refused.stderr  # Archived -> Production needs Staging first
    assert "Traceback" not in refused.stderr

    history = json.loads(
        cli_in_process("models", "history", "churn", "--json", cwd=tmp_path, env=env).stdout
    )
    assert [(h["version"], h["to_stage"], h["actor"]) for h in history] == [
        (1, "Production", "bob"),
        (2, "Archived", "alice"),
    ]
    when = history[0]["at"] + 1
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(when / 1000, tz=UTC).isoformat()
    prod = json.loads(
        cli_in_process(
            "models", "history", "churn", "--at", at, "--json", cwd=tmp_path, env=env
        ).stdout
    )
    assert prod["production_version"] == 1

    ev = json.loads(
        cli_in_process(
            "models",
            "evaluate",
            "models:/churn/Production",
            "--data",
            "churn.test@1",
            "--target",
            "churned",
            "--slice",
            "gender",
            "--json",
            cwd=tmp_path,
            env=env,
        ).stdout
    )
    assert ev["model"] == "models:/churn/1" and "female" in ev["slices"]["gender"]
    assert (
        cli_in_process(
            "models", "alias", "churn", "champion", "1", cwd=tmp_path, env=env
        ).returncode
        == 0
    )
    assert "champion" in cli_in_process("models", "list", cwd=tmp_path, env=env).stdout
    grants = json.loads(cli_in_process("roles", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert {(g["user"], g["role"]) for g in grants} == {("alice", "admin"), ("bob", "approver")}


def test_refused_promotion_prints_the_gates(tmp_path: Path) -> None:
    env = {"MILEPOST_USER": "alice"}
    subprocess.run(
        [sys.executable, "-c", TRAIN],
        cwd=tmp_path,
        check=True,
        env={**__import__("os").environ, **env},
    )
    (tmp_path / "p.yaml").write_text(
        "production:\n  - {kind: metric_vs_baseline, dataset: churn.test@1, target: churned, "
        "threshold: 0.99}\n"
    )
    cli_in_process("models", "policy", "churn", "--set", "p.yaml", cwd=tmp_path, env=env)
    out = cli_in_process(
        "models", "promote", "churn", "2", "--to", "Production", cwd=tmp_path, env=env
    )
    assert out.returncode == 1
    assert "failed" in out.stdout and "misses threshold 0.99" in out.stdout
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error [gate_failed]: Promotion of churn v2")
