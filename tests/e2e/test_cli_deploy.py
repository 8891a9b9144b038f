"""`milepost endpoints ...` as a user types it: endpoints that track Production, and pinned
ones; the wave-1 names (`deploy ...`, top-level `serve`) still work and stay out of --help."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.test_cli import cli_in_process
from tests.e2e.test_cli_models import TRAIN


def _one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 1, out.stdout
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_endpoints_track_production_and_rollouts_move_the_registry(tmp_path: Path) -> None:
    env = {"MILEPOST_USER": "alice"}
    subprocess.run(
        [sys.executable, "-c", TRAIN], cwd=tmp_path, check=True, env={**os.environ, **env}
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli_in_process(*args, cwd=tmp_path, env=env)

    def stages() -> dict[int, str]:
        listed = json.loads(run("models", "list", "churn", "--json").stdout)
        return {v["version"]: v["stage"] for v in listed}

    nothing = run("endpoints", "create", "churn", "--model", "churn")
    _one_line_error(nothing, "no version in Production")
    assert run("models", "promote", "churn", "1", "--to", "Production").returncode == 0
    created = run("endpoints", "create", "churn", "--model", "churn")
    assert created.returncode == 0, created.stderr
    assert "(tracks Production of churn): churn-v1 (primary)" in created.stdout
    pinned = run("endpoints", "create", "fixed", "--model", "churn", "--version", "2")
    assert "(pinned): churn-v2 (primary)" in pinned.stdout
    _one_line_error(
        run(
            "endpoints",
            "create",
            "x",
            "--model",
            "churn",
            "--version",
            "1",
            "--stage",
            "Production",
        ),
        "either a version to pin",
    )
    _one_line_error(
        run("endpoints", "create", "x", "--model", "churn", "--stage", "Staging"),
        "can track Production, not 'Staging'",
    )
    listed = run("endpoints", "list")
    assert "tracks Production of churn" in listed.stdout and "pinned" in listed.stdout
    kinds = {
        e["endpoint"]: e["kind"] for e in json.loads(run("endpoints", "list", "--json").stdout)
    }
    assert kinds == {"churn": "tracks Production of churn", "fixed": "pinned"}

    # promoting waits for the rollout; Production cannot move behind the endpoint
    out = run("models", "promote", "churn", "2", "--to", "Production", "--reason", "better")
    assert out.returncode == 0, out.stderr
    assert "Approved" in out.stdout
    # the command it names runs as typed (it once said `--version 2`, a usage error)
    hinted = re.search(r"`(milepost endpoints update [^`]*)`", " ".join(out.stdout.split()))
    assert hinted and hinted.group(1) == "milepost endpoints update churn 2", out.stdout
    waiting = json.loads(run("promotions", "list", "--json").stdout)
    assert [(r["version"], r["status"], r["endpoint"]) for r in waiting] == [
        (2, "awaiting_rollout", "churn")
    ]
    # the request waits for a rollout on endpoint churn (the table's last column)
    assert re.search(r"awaiting_rollout .* churn\s*$", run("promotions", "list").stdout, re.M)
    _one_line_error(run("models", "archive", "churn", "1"), "serves it as Production")
    assert stages() == {1: "Production", 2: "None"}

    # the canary carries that request; its last step moves registry and endpoint together
    canary = run(*hinted.group(1).split()[1:], "--steps", "100", "--min-seconds", "0")
    assert canary.returncode == 0, canary.stderr
    assert "carries promotion request" in canary.stdout and "rolling_out" in canary.stdout
    status = run("endpoints", "show", "churn")
    assert "tracks Production of churn" in status.stdout
    assert "registry: Production is v1, the primary here" in status.stdout
    assert "rollout carries promotion request" in status.stdout
    assert re.search(r"traffic \S+ \S+ to \S+ \S+ UTC \(\d+ s\)", status.stdout)  # the window
    promoted = run("endpoints", "advance", "churn", "--reason", "looks fine")
    assert promoted.returncode == 0, promoted.stderr
    assert "completed" in promoted.stdout
    assert stages() == {1: "Archived", 2: "Production"}
    assert (
        "registry: Production is v2, the primary here" in run("endpoints", "show", "churn").stdout
    )
    data = json.loads(run("endpoints", "show", "churn", "--json").stdout)
    assert data["registry"] == {"production_version": 2, "agrees": True}
    assert data["track"] == {"model": "churn", "stage": "Production"}

    # rolling back after it completed: both go back, and the request says so
    assert run("endpoints", "rollback", "churn", "--reason", "complaints").returncode == 0
    assert stages() == {1: "Production", 2: "Archived"}
    requests = json.loads(run("promotions", "list", "--status", "all", "--json").stdout)
    assert [r["status"] for r in requests] == ["rolled_back", "completed"]
    assert requests[0]["gates"][-1]["message"] == "rolled back after it completed: complaints"
    listed = run("promotions", "list", "--status", "all").stdout
    assert "rolled_back" in listed and "pending" not in listed

    # an archived version goes through Staging and its gates again first
    _one_line_error(
        run("endpoints", "update", "churn", "2", "--strategy", "blue-green"), "re-reviewed"
    )
    _one_line_error(run("promotions", "list", "--status", "rolledback"), "rolled_back")
    verify = run("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_update_advance_and_the_old_deploy_names(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", TRAIN], cwd=tmp_path, check=True, env=dict(os.environ))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli_in_process(*args, cwd=tmp_path)

    def show(name: str) -> Any:
        out = run("endpoints", "show", name, "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def primary(name: str) -> int:
        return int(next(v["version"] for v in show(name)["variants"] if v["role"] == "primary"))

    # the old names still work: `deploy create`, `deploy list`, `deploy status`
    created = run("deploy", "create", "fixed", "--model", "churn", "--version", "1")
    assert created.returncode == 0 and "(pinned): churn-v1 (primary)" in created.stdout
    assert [e["endpoint"] for e in json.loads(run("deploy", "list", "--json").stdout)] == ["fixed"]
    assert json.loads(run("deploy", "status", "fixed", "--json").stdout)["kind"] == "pinned"

    # update with a strategy, then advance: a blue/green preview takes all traffic
    preview = run("endpoints", "update", "fixed", "2", "--strategy", "blue-green")
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.startswith("Preview") and primary("fixed") == 1
    switched = run("endpoints", "advance", "fixed", "--reason", "checked")
    assert switched.returncode == 0 and switched.stdout.startswith("Switched"), switched.stderr
    assert primary("fixed") == 2
    assert run("deploy", "rollback", "fixed").returncode == 0  # the old name, the same verb
    assert primary("fixed") == 1
    _one_line_error(run("endpoints", "advance", "fixed"), "Nothing to promote")

    # replicas: `update --replicas`, and the old `deploy scale`
    scaled = json.loads(run("endpoints", "update", "fixed", "--replicas", "2", "--json").stdout)
    assert scaled["replicas"] == 2
    assert run("deploy", "scale", "fixed", "3").returncode == 0
    assert show("fixed")["replicas"] == 3

    # options that do not fit the strategy, and nothing to do, are refused before any change
    _one_line_error(run("endpoints", "update", "fixed"), "Nothing to update", "--replicas")
    _one_line_error(
        run("endpoints", "update", "fixed", "2", "--strategy", "rolling", "--steps", "5"),
        "--steps applies to --strategy canary, not rolling",
    )
    _one_line_error(
        run("endpoints", "update", "fixed", "2", "--share", "0.5"),
        "--share applies to --strategy shadow, not canary",
    )
    _one_line_error(run("endpoints", "update", "fixed", "--steps", "5"), "needs a VERSION")
    _one_line_error(
        run("endpoints", "update", "fixed", "2", "--max-p99-ratio", "-1"),
        "--max-p99-ratio -1.0: input should be greater than 0",
    )
    _one_line_error(run("deploy", "canary", "fixed", "2", "--min-seconds", "-1"), "--min-seconds")
    assert show("fixed")["rollout"] is not None  # still the rolled-back blue/green
    assert primary("fixed") == 1


def test_old_names_are_hidden_from_help_but_answer(tmp_path: Path) -> None:
    top = cli_in_process("--help", cwd=tmp_path)
    assert top.returncode == 0, top.stderr
    commands = re.findall(r"^│ (\S+)", top.stdout.split("Commands")[1], re.M)
    assert "endpoints" in commands, top.stdout
    assert "deploy" not in commands and "serve" not in commands, commands
    data = cli_in_process("data", "--help", cwd=tmp_path).stdout
    data_commands = re.findall(r"^│ (\S+)", data.split("Commands")[1], re.M)
    assert "register" in data_commands and "add" not in data_commands, data
    endpoints = cli_in_process("endpoints", "--help", cwd=tmp_path).stdout
    verbs = re.findall(r"^│ (\S+)", endpoints.split("Commands")[1], re.M)
    assert verbs == [
        "create",
        "list",
        "show",
        "update",
        "advance",
        "rollback",
        "finalize",
        "serve",
        "prune-logs",
    ]
    models = cli_in_process("models", "--help", cwd=tmp_path).stdout
    assert "versions" not in re.findall(r"^│ (\S+)", models.split("Commands")[1], re.M)
    for old in (
        ["deploy"],
        ["deploy", "canary"],
        ["serve"],
        ["data", "add"],
        ["models", "versions"],
    ):
        out = cli_in_process(*old, "--help", cwd=tmp_path)
        assert out.returncode == 0 and "Usage: milepost " + " ".join(old) in out.stdout, out
