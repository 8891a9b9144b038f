"""``milepost experiments ...`` and ``milepost runs ...`` embedded and remote
(``MILEPOST_URL``/``MILEPOST_TOKEN``): the same commands print the same data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import milepost
from tests.e2e.test_cli import cli_in_process


@pytest.fixture
def env(platform: dict[str, Any], mode: str) -> dict[str, str]:
    if mode == "remote":
        return {"MILEPOST_URL": platform["url"], "MILEPOST_TOKEN": platform["token"]}
    return {"MILEPOST_HOME": str(Path(platform["home"]) / ".milepost"), "MILEPOST_USER": "alice"}


def _json(*args: str, env: dict[str, str], cwd: Path) -> Any:
    done = cli_in_process(*args, "--json", cwd=cwd, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_experiments_and_runs_commands(
    env: dict[str, str], platform: dict[str, Any], unique: str, tmp_path: Path
) -> None:
    created = cli_in_process("experiments", "create", unique, cwd=tmp_path, env=env)
    assert created.returncode == 0, created.stderr
    names = [e["name"] for e in _json("experiments", "list", env=env, cwd=tmp_path)]
    assert unique in names

    client = milepost.Client(platform["rt"])
    for i in range(3):
        run = client.create_run(unique, run_name=f"c{i}")
        client.log_batch(run.run_id, metrics={"acc": i / 10})
        client.set_terminated(run.run_id)
    client.flush()
    page = _json(
        "runs", "list", "-e", unique, "-o", "metrics.acc DESC", "--max", "2", env=env, cwd=tmp_path
    )
    assert [r["name"] for r in page["runs"]] == ["c2", "c1"]
    assert page["next_page_token"]
    shown = _json("runs", "show", page["runs"][0]["run_id"], env=env, cwd=tmp_path)
    assert shown["metrics"] == {"acc": 0.2} and shown["environment"]["env_hash"]
    assert shown["inputs"] == [] and shown["artifacts"] == []

    human = cli_in_process("runs", "list", "-e", unique, cwd=tmp_path, env=env)
    assert human.returncode == 0 and "c0" in human.stdout
    renamed = cli_in_process("experiments", "rename", unique, f"{unique}-r", cwd=tmp_path, env=env)
    assert renamed.returncode == 0, renamed.stderr
    missing = cli_in_process("runs", "show", "f" * 32, cwd=tmp_path, env=env)
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_info_says_remote_mode(platform: dict[str, Any], tmp_path: Path) -> None:
    env = {"MILEPOST_URL": platform["url"], "MILEPOST_TOKEN": platform["token"]}
    data = _json("info", env=env, cwd=tmp_path)
    assert data["mode"] == "remote"
    assert data["server"]["url"] == platform["url"]
    assert data["server"]["user"] == "alice" and data["server"]["role"] == "admin"
    assert platform["token"] not in json.dumps(data)
    human = cli_in_process("info", cwd=tmp_path, env=env)
    assert "remote mode" in human.stdout and platform["url"] in human.stdout
    assert platform["token"] not in human.stdout
    assert not (tmp_path / ".milepost").exists()  # no local store was opened
