"""`milepost serve` refuses a variant the loading side does not trust: one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from tests.contract.conftest import FEATURES
from tests.contract.test_model_trust import SCORE, _scored

pytestmark = pytest.mark.slow


def test_serve_refuses_a_variant_whose_types_are_no_longer_trusted(
    tmp_path: Path, churn_frame: pd.DataFrame
) -> None:
    rt = milepost.configure(home=tmp_path / "home", user="ops")
    with milepost.start_run():
        milepost.log_model(
            _scored(churn_frame),
            "churn",
            input_example=churn_frame[FEATURES].head(3),
            onnx=True,
            trusted_types=[SCORE],
        )
    rt.roles.grant("ops", "approver")
    rt.models.add_trusted_type(SCORE, reason="our feature score")
    rt.serving.create("churn-ep", "churn", version=1)
    rt.models.remove_trusted_type(SCORE, reason="withdrawn")
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env |= rt.settings.to_env()
    milepost.reset()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "milepost",
            "endpoints",
            "serve",
            "churn-ep",
            "--port",
            "0",
            "--replicas",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "Internal error" not in out.stderr
    refusals = [line for line in out.stderr.splitlines() if "cannot start" in line]
    assert len(refusals) == 1, out.stderr
    assert f"type '{SCORE}', which this process does not trust" in refusals[0]
    assert "did not become ready" in out.stderr
