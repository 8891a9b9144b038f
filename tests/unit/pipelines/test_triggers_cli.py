"""`milepost triggers ...` and `milepost scheduler` as a user types them (in-process)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from milepost import Client
from tests.e2e.test_cli import cli_in_process
from tests.unit.pipelines.test_triggers import CHURN

ENV = {"MILEPOST_USER": "alice"}


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli_in_process(*args, cwd=tmp_path, env=ENV)


def test_add_list_show_fire_remove(tmp_path: Path) -> None:
    added = run(
        tmp_path,
        "triggers", "add", "nightly", "--pipeline", CHURN, "--param", "rows=5",
        "--param", "c=0.5", "--schedule", "0 3 * * *",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"Added trigger nightly: {CHURN} on schedule 0 3 * * *."

    listed = run(tmp_path, "triggers", "list")
    assert listed.returncode == 0, listed.stderr
    assert "nightly" in listed.stdout and "schedule 0 3 * * *" in listed.stdout
    assert "c=0.5 rows=5" in listed.stdout
    assert "No scheduler has run on this store" in listed.stdout
    data = json.loads(run(tmp_path, "triggers", "list", "--json").stdout)
    assert data["scheduler"] is None
    [t] = data["triggers"]
    assert t["name"] == "nightly" and t["params"] == {"c": "0.5", "rows": "5"}
    assert t["created_by"] == "alice" and t["last_firing"] is None

    once = run(tmp_path, "scheduler", "--once")
    assert once.returncode == 0 and once.stdout.strip() == "Nothing was due.", once.stdout
    tick = json.loads(run(tmp_path, "scheduler", "--once", "--json").stdout)
    assert tick["active"] and tick["firings"] == [] and tick["errors"] == []
    assert tick["lease"]["holder"] == tick["holder"]
    status = run(tmp_path, "scheduler", "--status")
    assert "No scheduler is active" in status.stdout and "stopped" in status.stdout

    shown = run(tmp_path, "triggers", "show", "nightly")
    assert "Trigger nightly (enabled)" in shown.stdout and "params c=0.5 rows=5" in shown.stdout
    assert run(tmp_path, "triggers", "disable", "nightly").stdout.strip() == (
        "Disabled trigger nightly."
    )
    assert "schedule (disabled)" in run(tmp_path, "triggers", "list").stdout
    assert run(tmp_path, "triggers", "firings").stdout.strip() == "No firings."
    removed = run(tmp_path, "triggers", "remove", "nightly", "--reason", "done")
    assert removed.stdout.strip() == "Removed trigger nightly."
    assert "No triggers" in run(tmp_path, "triggers", "list").stdout


def test_bad_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    cases = [
        (["--pipeline", CHURN, "--schedule", "0 3 * *"], "not a five-field cron"),
        (["--pipeline", "nope:flow", "--schedule", "0 3 * * *"], "Cannot import module 'nope'"),
        (["--pipeline", CHURN, "--param", "rows", "--schedule", "@daily"], "not NAME=VALUE"),
        (["--pipeline", CHURN, "--param", "rowz=1", "--schedule", "0 3 * * *"], "'rowz'"),
        (["--pipeline", CHURN], "exactly one cause; got none"),
        (["--pipeline", CHURN, "--on-drift", "ghost"], "No monitor named 'ghost'"),
        (["--pipeline", CHURN, "--on-data", "customers", "--min-rows", "5"], "No dataset"),
    ]
    for args, message in cases:
        out = run(tmp_path, "triggers", "add", "t", *args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert message in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
    out = run(tmp_path, "triggers", "add", "t", "--pipeline", CHURN, "--on-data", "x",
              "--min-rows", "0")  # fmt: skip
    assert out.returncode == 2  # a usage error: min_rows is at least 1
    assert run(tmp_path, "triggers", "fire", "ghost").returncode == 1


def test_client_facade(tmp_path: Path) -> None:
    import milepost

    milepost.configure(home=tmp_path / "home", user="bob")
    client = Client()
    t = client.add_trigger("n", CHURN, params={"rows": 7}, schedule="every 1h")
    assert client.get_trigger("n") == t and client.list_triggers() == [t]
    assert t.params == {"rows": "7"} and t.created_by == "bob"
    assert not client.disable_trigger("n").enabled and client.enable_trigger("n").enabled
    assert client.list_firings("n") == []
    client.remove_trigger("n")
    assert client.list_triggers() == []
