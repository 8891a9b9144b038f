"""`milepost monitor ...` as a user types it: create a monitor on an endpoint whose traffic
shifted, run it once (results table, alerts listed, exit 0, the report written), show it,
acknowledge its alert, pause it, delete it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli import cli, cli_in_process

# A served model and an hour of logged traffic after an hour of normal traffic; ages in
# the last hour are 25 years older (the shift the monitor must find).
SETUP = """
import json, time, uuid
import milepost
from sklearn.dummy import DummyClassifier
from milepost.demo.data import generate_customers, NUMERIC, CATEGORICAL, LABEL
from milepost.serving.logger import PredictionLogger
df = generate_customers(1200, seed=3)
X = df[NUMERIC + CATEGORICAL]
with milepost.start_run(experiment="cli"):
    milepost.log_model(DummyClassifier(strategy="prior").fit(X, df[LABEL]), "churn",
                       input_example=X.head(3))
rt = milepost.get_runtime()
rt.serving.create("churn-ep", "churn", version=1)
now = int(time.time() * 1000)
logger = PredictionLogger("churn-ep", rt.settings.home / "predictions", rt.serving.store,
                          interval=3600)
for i, row in enumerate(json.loads(X.to_json(orient="records"))):
    recent = i >= 600
    if recent:
        row["age"] += 25
    logger.append({
        "request_id": uuid.uuid4().hex, "row": 0,
        "ts": now - (30 if recent else 90) * 60_000 + i, "endpoint": "churn-ep",
        "variant": "churn-v1", "model": "churn", "version": 1, "role": "primary", "key": None,
        "features": json.dumps(row), "prediction": "0", "latency_ms": 1.0, "status": "ok",
        "error": None,
    })
logger.close()
"""


def test_create_run_and_show_a_monitor(tmp_path: Path) -> None:
    env = {"MILEPOST_USER": "alice"}
    subprocess.run(
        [sys.executable, "-c", SETUP], cwd=tmp_path, check=True, env={**os.environ, **env}
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli_in_process(*args, cwd=tmp_path, env=env)

    created = run(
        "monitor",
        "create",
        "churn-drift",
        "--endpoint",
        "churn-ep",
        "--check",
        "feature_drift",
        "--window",
        "1h",
        "--schedule",
        "*/5 * * * *",
        "--threshold",
        "psi=0.2",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    mon = json.loads(created.stdout)
    assert mon["checks"] == ["feature_drift"] and mon["schedule"] == "*/5 * * * *"
    assert mon["next_run_at"] % 300_000 == 0 and mon["created_by"] == "alice"

    # the console script itself, once
    ran = cli("monitor", "run", "churn-drift", "--report", "out/drift", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    # each alert is printed once, in the output; no stray log line on stderr
    assert "ALERT" not in ran.stderr, ran.stderr
    assert (tmp_path / "out" / "drift.html").stat().st_size > 0
    assert json.loads((tmp_path / "out" / "drift.json").read_text())["alerts"]
    out = ran.stdout
    assert "window 1h" in out and "600 rows" in out and "breached" in out
    header = next(line for line in out.splitlines() if "metric" in line)
    assert "feature_drift" in out.splitlines()[1]  # the check's table follows its name
    for word in ("metric", "feature", "value", "threshold", "breached", "rows"):
        assert word in header, header
    age = next(line for line in out.splitlines() if line.split()[:2] == ["psi", "age"])
    assert "yes" in age and "0.2" in age
    plan = next(line for line in out.splitlines() if line.split()[:2] == ["psi", "plan"])
    assert " no " in plan
    assert "alert(s):" in out and "psi[age]=" in out

    shown = run("monitor", "show", "churn-drift")
    assert shown.returncode == 0, shown.stderr
    assert "next run" in shown.stdout and "Latest run" in shown.stdout
    assert "Recent alerts (1)" in shown.stdout and "psi[age]=" in shown.stdout

    listed = run("monitor", "alerts", "--json")
    [alert] = json.loads(listed.stdout)
    assert (alert["metric"], alert["feature"], alert["acknowledged_by"]) == ("psi", "age", None)
    acked = run("monitor", "ack", str(alert["alert_id"]))
    assert acked.returncode == 0 and "acknowledged by alice" in acked.stdout
    assert "No alerts." in run("monitor", "alerts", "--unacknowledged").stdout

    paused = run("monitor", "update", "churn-drift", "--disable", "--threshold", "psi=5")
    assert paused.returncode == 0 and "disabled" in paused.stdout, paused.stderr
    assert "disabled" in run("monitor", "list").stdout
    once = run("monitor", "watch", "--once")  # a disabled monitor is never due
    assert once.returncode == 0 and once.stdout == "", once.stdout
    contradiction = run(
        "monitor", "update", "churn-drift", "--schedule", "* * * * *", "--no-schedule"
    )
    assert contradiction.returncode == 1 and "contradict" in contradiction.stderr

    assert run("monitor", "delete", "churn-drift", "--reason", "done").returncode == 0
    assert "No monitors" in run("monitor", "list").stdout
