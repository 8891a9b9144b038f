"""`milepost decisions ...` and the consequential flag of `milepost endpoints` as a user
types them; the decisions come from an engine answering as a replica does."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import milepost
from milepost.serving.engine import EndpointEngine
from milepost.serving.logger import PredictionLogger
from tests.e2e.test_cli import cli_in_process

pytest.importorskip("shap")

FEATURES = [f"f{i}" for i in range(12)]


def _answer(home: Path, endpoint: str, rows: list[dict[str, Any]]) -> str:
    """Predict through the engine of a replica; the request id of its answer."""
    rt = milepost.configure(home=home)
    logger = PredictionLogger(endpoint, home / "predictions", rt.serving.store, interval=3600)
    engine = EndpointEngine(
        endpoint, store=rt.serving.store, models=rt.models, features=rt.features, logger=logger
    )
    reply = engine.predict(orjson.dumps({"rows": rows}))
    engine.close()
    milepost.reset()
    request_id: str = orjson.loads(reply.body)["request_id"]
    return request_id


def _one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 1, out.stdout
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_mark_an_endpoint_then_show_and_list_its_decisions(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"MILEPOST_HOME": str(home), "MILEPOST_USER": "alice"}
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(300, len(FEATURES))), columns=FEATURES)
    y = (x["f0"] - 2 * x["f5"] + 0.1 * x["f11"] > 0).astype(int)
    milepost.configure(home=home, user="alice")
    with milepost.start_run(experiment="credit"):
        milepost.log_model(
            LogisticRegression(max_iter=500).fit(x, y), "credit", input_example=x.head(5)
        )
    milepost.reset()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli_in_process(*args, cwd=tmp_path, env=env)

    created = run("endpoints", "create", "credit-ep", "--model", "credit", "--version", "1")
    assert created.returncode == 0, created.stderr
    plain = _answer(home, "credit-ep", x.head(1).to_dict("records"))
    _one_line_error(run("decisions", "show", plain), "keeps no decision records", "--consequential")

    marked = run("endpoints", "update", "credit-ep", "--consequential", "--reason", "loans")
    assert marked.returncode == 0, marked.stderr
    assert "Marked consequential (pinned, consequential): credit-v1 (primary)" in marked.stdout
    shown = run("endpoints", "show", "credit-ep")
    assert "consequential: decisions recorded" in shown.stdout
    assert json.loads(run("endpoints", "show", "credit-ep", "--json").stdout)["consequential"]

    rows = x.iloc[7:9].to_dict("records")
    request_id = _answer(home, "credit-ep", rows)
    out = run("decisions", "show", request_id, "--row", "1")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"Decision {request_id} (row 1 of 2) · endpoint credit-ep" in text
    assert "model: models:/credit/1 (variant credit-v1)" in text
    assert "prediction: " in text and "why: linear contributions (log-odds)" in text
    assert "(2 others)" in text  # 12 inputs: the top 10 by name, the rest summed
    assert "= output" in text and "for class 1" in text
    assert "upstream of models:/credit/1" in text  # the lineage of the version that decided
    assert re.search(r"\n\s*run\s+run \S+ \([0-9a-f]{8}\)", text), text

    data = json.loads(run("decisions", "show", request_id, "--row", "1", "--json").stdout)
    e = data["explanation"]
    assert data["features"] == pytest.approx(rows[1]) and data["uri"] == "models:/credit/1"
    total = e["base_value"] + sum(e["contributions"].values()) + e["other"]
    assert total == pytest.approx(e["output"], abs=1e-6)
    assert data["lineage"]["root"] == "model_version:credit/1" and data["lineage_note"] is None
    assert any(n["kind"] == "run" for n in data["lineage"]["nodes"])

    listed = json.loads(run("decisions", "list", "--endpoint", "credit-ep", "--json").stdout)
    assert [(d["request_id"], d["row"]) for d in listed] == [(request_id, 0), (request_id, 1)]
    table = run("decisions", "list", "--endpoint", "credit-ep", "--since", "1h")
    assert "2 decision(s) of credit-ep in the last 1h" in table.stdout
    assert f"{request_id}/0" in table.stdout
    _one_line_error(
        run("decisions", "show", "0190a0b0c0d07000800000000000abcd"), "No endpoint logged"
    )
    _one_line_error(
        run("decisions", "list", "--endpoint", "credit-ep", "--since", "last 10"),
        "must be a duration",
    )

    unmarked = run("endpoints", "update", "credit-ep", "--not-consequential")
    assert "Unmarked (pinned): credit-v1 (primary)" in unmarked.stdout


def test_prune_logs_says_what_retention_keeps(tmp_path: Path) -> None:
    env = {"MILEPOST_HOME": str(tmp_path / "home")}
    out = cli_in_process("endpoints", "prune-logs", "--dry-run", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert "No retention is set" in out.stdout
    env["MILEPOST_PREDICTION_LOG_RETENTION_DAYS"] = "30"
    out = cli_in_process("endpoints", "prune-logs", "--dry-run", cwd=tmp_path, env=env)
    assert "Would delete 0 segment(s)" in out.stdout
    assert "decisions: kept forever" in out.stdout
    report = json.loads(
        cli_in_process("endpoints", "prune-logs", "--json", cwd=tmp_path, env=env).stdout
    )
    assert report["dry_run"] is False and report["segments"] == 0
    assert report["before_ms"]["decisions"] is None
