"""`milepost models show` says whether a version carries its training data's profile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli import cli

TRAIN = """
import milepost
from sklearn.dummy import DummyClassifier
from milepost.demo.data import generate_customers, NUMERIC, LABEL
df = generate_customers(600, seed=5)
model = DummyClassifier(strategy="prior").fit(df[NUMERIC], df[LABEL])
with milepost.start_run(experiment="cli"):
    milepost.log_model(model, "churn", input_example=df[NUMERIC].head(3),
                       training_data=df[NUMERIC])
with milepost.start_run(experiment="cli"):
    milepost.log_model(model, "churn", input_example=df[NUMERIC].head(3))
"""


def test_models_show_says_whether_a_profile_is_stored(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    subprocess.run([sys.executable, "-c", TRAIN], cwd=tmp_path, check=True, env=env)
    with_profile = cli("models", "show", "churn", "1", cwd=tmp_path)
    assert with_profile.returncode == 0, with_profile.stderr
    assert "reference profile: stored" in with_profile.stdout
    without = cli("models", "show", "churn", "2", cwd=tmp_path)
    assert "reference profile: none (log the model with training_data=" in without.stdout
    files = json.loads(cli("models", "show", "churn", "1", "--json", cwd=tmp_path).stdout)["files"]
    assert "profile.json" in files
