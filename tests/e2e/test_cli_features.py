"""`milepost features ...` as a user types it, and the feature server over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests._wait import wait_until
from tests.e2e.test_cli import MILEPOST, cli, cli_in_process

REPO = """
from datetime import timedelta
from milepost.features import Entity, FeatureView, Field, FileSource

customer = Entity("customer", join_keys=["customer_id"])

def doubled(df):
    df["double_spend"] = df["spend"] * 2
    return df

spend = FeatureView(name="spend", entity=customer, source=FileSource("spend.parquet"),
                    timestamp_field="ts", ttl=timedelta(days=7),
                    schema=[Field("spend"), Field("double_spend")], transform=doubled)
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    now = datetime.now(UTC).replace(microsecond=0)
    pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "ts": [now - timedelta(hours=h) for h in (1, 2, 3)],
            "spend": [10.0, 20.0, 30.0],
        }
    ).to_parquet(tmp_path / "spend.parquet")
    (tmp_path / "features.py").write_text(REPO)
    return tmp_path


def test_plan_apply_materialize_get_check(repo: Path) -> None:
    plan = json.loads(cli_in_process("features", "plan", "--json", cwd=repo).stdout)
    assert plan == [
        {
            "view": "spend",
            "change": "new",
            "current_version": None,
            "next_version": 1,
            "fingerprint": plan[0]["fingerprint"],
            "next_steps": [],
        }
    ]
    applied = cli_in_process("features", "apply", cwd=repo)
    assert applied.returncode == 0 and "new" in applied.stdout
    listed = json.loads(cli_in_process("features", "list", "--json", cwd=repo).stdout)
    assert [(v["name"], v["version"], v["status"]) for v in listed] == [("spend", 1, "active")]
    out = cli_in_process("features", "materialize", "--incremental", cwd=repo)
    assert out.returncode == 0 and "spend:v1: 3 rows" in out.stdout
    got = json.loads(
        cli_in_process(
            "features", "get", "spend:double_spend", "-e", "customer_id=2", "--json", cwd=repo
        ).stdout
    )
    assert got == {"values": {"double_spend": [40.0]}, "statuses": {"double_spend": ["present"]}}
    check = cli_in_process("features", "check-consistency", "spend", cwd=repo)
    assert check.returncode == 0 and "consistent" in check.stdout
    # a changed definition is a new version; the plan says so before anything changes
    (repo / "features.py").write_text(REPO.replace("* 2", "* 3"))
    plan = json.loads(cli_in_process("features", "plan", "--json", cwd=repo).stdout)
    assert (plan[0]["change"], plan[0]["next_version"]) == ("new_version", 2)
    stale = cli_in_process("features", "get", "spend:spend", "-e", "customer_id=2", cwd=repo)
    assert stale.returncode == 1 and "differs from every registered version" in stale.stderr
    assert cli_in_process("features", "retire", "spend:v1", cwd=repo).returncode == 0
    assert cli_in_process("features", "list", "--json", cwd=repo).stdout.strip() == "[]"


def test_materialize_refills_a_lost_store_and_says_why(repo: Path) -> None:
    cli_in_process("features", "apply", cwd=repo)
    first = cli_in_process("features", "materialize", "--incremental", cwd=repo)
    assert first.returncode == 0 and "spend:v1: 3 rows" in first.stdout
    for name in ("online.db", "online.db-wal", "online.db-shm"):  # the online store is lost
        (repo / ".milepost" / name).unlink(missing_ok=True)
    again = cli_in_process("features", "materialize", "--incremental", cwd=repo)
    assert again.returncode == 0 and "spend:v1: 3 rows" in again.stdout, again.stdout
    got = json.loads(
        cli_in_process(
            "features", "get", "spend:spend", "-e", "customer_id=2", "--json", cwd=repo
        ).stdout
    )
    assert got["statuses"] == {"spend": ["present"]}
    # what it wrote and why, in words and in JSON; `features list` says what the store holds
    assert "holds none of its rows" in again.stdout and "refilled from" in again.stdout
    listed = cli_in_process("features", "list", cwd=repo)
    assert "through" in listed.stdout and "never" not in listed.stdout, listed.stdout
    done = cli_in_process("features", "materialize", "--incremental", "--json", cwd=repo)
    report = json.loads(done.stdout)
    assert report["spend:v1"]["rows"] == 0 and "from the watermark" in report["spend:v1"]["reason"]
    for name in ("online.db", "online.db-wal", "online.db-shm"):
        (repo / ".milepost" / name).unlink(missing_ok=True)
    listed = cli_in_process("features", "list", "--json", cwd=repo)
    online = json.loads(listed.stdout)[0]["online"]
    assert online["intervals"] == [] and "never materialized into this store" in online["state"]
    assert (
        "never materialized into this store" in cli_in_process("features", "list", cwd=repo).stdout
    )


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_an_edited_view_keeps_its_old_version_readable_and_says_what_to_run(repo: Path) -> None:
    # real processes: in one long-lived process the deleted transform is still in memory
    _git(repo, "init", "-q")
    _git(repo, "add", "features.py")
    _git(repo, "commit", "-q", "-m", "v1")
    commit = _git(repo, "rev-parse", "HEAD")
    cli("features", "apply", cwd=repo)
    assert cli("features", "materialize", "--incremental", cwd=repo).returncode == 0
    unchanged = cli("features", "apply", cwd=repo)
    row = next(line for line in unchanged.stdout.splitlines() if "unchanged" in line)
    assert row.replace("│", " ").split() == ["spend", "unchanged", "v1", "v1"], unchanged.stdout
    assert "Next:" not in unchanged.stdout

    # the transform is deleted from the file: spend:v2 serves only what the source has
    edited = REPO.replace("transform=doubled", "").replace(', Field("double_spend")', "")
    edited = edited.replace('def doubled(df):\n    df["double_spend"] = df["spend"] * 2\n', "")
    (repo / "features.py").write_text(edited.replace("    return df\n", ""))
    assert "doubled" not in (repo / "features.py").read_text()
    applied = cli("features", "apply", cwd=repo)
    row = next(line for line in applied.stdout.splitlines() if "new_version" in line)
    assert row.replace("│", " ").split() == ["spend", "new_version", "v1", "v2"], applied.stdout
    assert "spend:v2 is not in the online store yet" in applied.stdout
    assert "milepost features materialize --incremental" in applied.stdout
    # the unversioned ref moved to v2, which is not materialized: said, not read as missing
    moved = cli("features", "get", "spend:spend", "-e", "customer_id=2", cwd=repo)
    assert moved.returncode == 1 and "spend:v2 is not materialized" in moved.stderr
    assert "materialize --incremental" in moved.stderr and "spend:v1:spend" in moved.stderr
    # v1 is still read online from its stored rows, derived feature included
    old = cli("features", "get", "spend:v1:double_spend", "-e", "customer_id=2", "--json", cwd=repo)
    assert json.loads(old.stdout)["values"] == {"double_spend": [40.0]}, old.stderr
    # offline, after the source changed, v1's derived feature needs the deleted code
    now = datetime.now(UTC).replace(microsecond=0)
    pd.DataFrame(
        {"customer_id": [1, 2], "ts": [now - timedelta(hours=1)] * 2, "spend": [11.0, 21.0]}
    ).to_parquet(repo / "spend.parquet")
    check = cli("features", "check-consistency", "spend:v1", cwd=repo)
    assert check.returncode == 1 and "Traceback" not in check.stderr
    assert "spend:v1: feature 'double_spend'" in check.stderr, check.stderr
    assert "doubled in features.py" in check.stderr and commit[:12] in check.stderr
    assert f"git show {commit[:12]}:features.py" in check.stderr
    # materializing v2 makes the unversioned ref readable again
    assert cli("features", "materialize", "--incremental", cwd=repo).returncode == 0
    got = json.loads(
        cli("features", "get", "spend:spend", "-e", "customer_id=2", "--json", cwd=repo).stdout
    )
    assert got == {"values": {"spend": [21.0]}, "statuses": {"spend": ["present"]}}


def test_bad_repo_is_one_line(tmp_path: Path) -> None:
    out = cli_in_process("features", "plan", "--repo", "missing.py", cwd=tmp_path)
    assert out.returncode == 1 and "missing.py does not exist" in out.stderr
    (tmp_path / "broken.py").write_text("import nothing_here\n")
    out = cli_in_process("features", "plan", "--repo", "broken.py", cwd=tmp_path)
    assert out.returncode == 1 and "Importing broken.py failed: ModuleNotFoundError" in out.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_feature_server_over_http(repo: Path, workers: int) -> None:
    """One process, and uvicorn's worker processes (which build the app themselves)."""
    cli("features", "apply", cwd=repo)
    cli("features", "materialize", "--incremental", cwd=repo)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    log = (repo / "server.log").open("wb")
    server = subprocess.Popen(
        [MILEPOST, "features", "serve", "--port", str(port), "--workers", str(workers)],
        cwd=repo,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200,
            what="the feature server to answer /health",
            timeout=60,
            ignore=(httpx.TransportError,),
            detail=(repo / "server.log").read_text,
        )
        body = {
            "features": ["spend:spend", "spend:double_spend"],
            "entities": [{"customer_id": 1}, {"customer_id": 42}],
        }
        r = httpx.post(f"{url}/v1/features/online", json=body, timeout=5)
        assert r.status_code == 200
        assert r.json() == {
            "features": ["spend", "double_spend"],
            "values": {"spend": [10.0, None], "double_spend": [20.0, None]},
            "statuses": {"spend": ["present", "missing"], "double_spend": ["present", "missing"]},
        }
        bad = httpx.post(
            f"{url}/v1/features/online",
            json={"features": ["spend:spnd"], "entities": [{"customer_id": 1}]},
            timeout=5,
        )
        assert bad.status_code == 404 and bad.json()["code"] == "not_found"
        assert "Did you mean 'spend'" in bad.json()["message"]
        missing_key = httpx.post(
            f"{url}/v1/features/online",
            json={"features": ["spend:spend"], "entities": [{"id": 1}]},
            timeout=5,
        )
        assert missing_key.status_code == 400 and "customer_id" in missing_key.json()["message"]
        malformed = httpx.post(f"{url}/v1/features/online", json={"features": []}, timeout=5)
        assert malformed.status_code == 422 and "'features'" in malformed.json()["message"]
        not_json = httpx.post(f"{url}/v1/features/online", content=b"{nope", timeout=5)
        assert not_json.status_code == 422 and not_json.json()["code"] == "invalid_input"
        nowhere = httpx.get(f"{url}/v1/nowhere", timeout=5)
        assert nowhere.status_code == 404 and nowhere.json()["code"] == "not_found"
        wrong = httpx.get(f"{url}/v1/features/online", timeout=5)  # a POST route
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST", wrong.text
        assert "takes POST, not GET" in wrong.json()["message"]
        assert httpx.post(f"{url}/health", timeout=5).headers["allow"] == "GET, HEAD"
        # a version applied meanwhile but not materialized: 409, never "missing"
        (repo / "features.py").write_text(REPO.replace("* 2", "* 5"))
        assert cli("features", "apply", cwd=repo).returncode == 0
        deadline = time.monotonic() + 20
        while True:  # the server sees new versions within a second
            fresh = httpx.post(
                f"{url}/v1/features/online",
                json={"features": ["spend:v2:spend"], "entities": [{"customer_id": 1}]},
                timeout=5,
            )
            if fresh.status_code != 404 or time.monotonic() > deadline:
                break
        assert fresh.status_code == 409 and fresh.json()["code"] == "conflict", fresh.text
        assert "spend:v2 is not materialized" in fresh.json()["message"]
        assert "materialize --incremental" in fresh.json()["hint"]
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
