"""``milepost models`` and ``milepost data`` as a user types them, embedded (MILEPOST_HOME)
and remote (MILEPOST_URL and a token): the same commands print the same JSON, and a
promotion requested by one user is approved by another."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.shared._registry import FRAME, register_model, token_of

# each command is a new interpreter (a few seconds apiece on a busy machine)
pytestmark = pytest.mark.slow


def _milepost(
    platform: dict[str, Any], mode: str, user: str, role: str, *args: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env["COLUMNS"] = "200"
    secret = token_of(platform, user, role)  # also grants the user an approver role
    if mode == "remote":
        env["MILEPOST_URL"] = platform["url"]
        env["MILEPOST_TOKEN"] = secret
    else:
        env["MILEPOST_HOME"] = str(Path(platform["home"]) / ".milepost")
        env["MILEPOST_USER"] = user
    return subprocess.run(
        [sys.executable, "-m", "milepost", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_models_and_data_commands(
    platform: dict[str, Any], mode: str, unique: str, tmp_path: Path
) -> None:
    rt = platform["rt"]
    register_model(rt, unique)
    if not rt.roles.has("alice", "approver"):
        rt.roles.grant("alice", "approver")

    def milepost(*args: str, user: str = "alice", role: str = "admin") -> str:
        done = _milepost(platform, mode, user, role, *args, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    listed = {m["name"]: m for m in json.loads(milepost("models", "list", "--json"))}
    assert listed[unique] == rt.models.get_model(unique).to_dict()
    rt.promotion.set_policy(unique, {"production": [{"kind": "approval"}]})
    req = json.loads(milepost("models", "promote", unique, "2", "--to", "Production", "--json"))
    assert (req["status"], req["requested_by"]) == ("pending_approval", "alice")
    refused = _milepost(
        platform, mode, "alice", "admin", "promotions", "approve", req["request_id"], cwd=tmp_path
    )
    assert refused.returncode == 1 and "cannot approve it too" in refused.stdout + refused.stderr
    done = milepost("promotions", "approve", req["request_id"][:8], user="bob", role="approver")
    assert re.search(rf"{unique} v2 is now in Production", done)
    assert rt.models.get_model(unique).production_version == 2

    FRAME.to_csv(tmp_path / "frame.csv", index=False)
    milepost("data", "register", f"{unique}_d", "frame.csv")
    shown = json.loads(milepost("data", "show", f"{unique}_d@1", "--json"))
    expected = rt.data.get(f"{unique}_d@1").to_dict()
    assert {k: shown[k] for k in expected if k != "source_uri"} == {
        k: v for k, v in expected.items() if k != "source_uri"
    }


@pytest.mark.parametrize("args", [["models", "list", "--json"], ["data", "list", "--json"]])
def test_a_viewer_reads(platform: dict[str, Any], args: list[str], tmp_path: Path) -> None:
    done = _milepost(platform, "remote", "vera", "viewer", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)


def test_an_approver_sets_the_policy_of_a_model_before_its_first_version(
    platform: dict[str, Any], mode: str, unique: str, tmp_path: Path
) -> None:
    """`milepost models policy NEW --set policy.yaml` creates the model with its policy (the
    one-time setup of a new project's server); a bad file creates nothing."""
    rt = platform["rt"]
    (tmp_path / "bad.yaml").write_text("production:\n  - {kind: nope}\n")
    bad = _milepost(
        platform,
        mode,
        "pat",
        "approver",
        "models",
        "policy",
        unique,
        "--set",
        "bad.yaml",
        cwd=tmp_path,
    )
    assert bad.returncode == 1 and "nope" in bad.stdout + bad.stderr
    assert unique not in {m.name for m in rt.models.list_models()}
    (tmp_path / "policy.yaml").write_text(
        "production:\n  - {kind: approval, role: approver}\n"
        "deploy: {automatic: true, endpoint: churn}\n"
    )
    args = ("models", "policy", unique, "--set", "policy.yaml", "--json")
    done = _milepost(platform, mode, "pat", "approver", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == rt.promotion.get_policy(unique).to_dict()
    model = rt.models.get_model(unique)
    assert (model.latest_version, model.created_by, model.has_policy) == (None, "pat", True)
    member = _milepost(platform, mode, "mo", "member", *args, cwd=tmp_path)
    if mode == "remote":  # setting a policy stays the approver's
        assert member.returncode == 1 and "approver" in member.stdout + member.stderr
