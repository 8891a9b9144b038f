"""What the list and show commands print reads right in an 80-column terminal.

Values stay whole (ids, names, numbers, times: never split or cut mid-token), free text
wraps between words, columns that do not fit are left out with a note, and summaries
show what is true: the experiment's name, and the value in force for every setting.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from milepost.cli._output import Col, console, fit_table
from tests.e2e.test_cli import cli_in_process

LONG_EXPERIMENT = "customer-retention-q3"


def run80(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``milepost ARGS`` in an 80-column terminal (in-process: see ``cli_in_process``)."""
    out = cli_in_process(*args, cwd=cwd, columns=80)
    assert out.returncode == 0, out.stderr
    if "--json" not in args:
        assert all(len(line) <= 80 for line in out.stdout.splitlines()), out.stdout
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tables")
    script = root / "train.py"
    script.write_text(
        "import milepost\n"
        f"for i, model in enumerate(['gradient-boosting-v2', 'logistic-regression']):\n"
        f"    with milepost.start_run(experiment={LONG_EXPERIMENT!r}, run_name=model):\n"
        "        milepost.log_params({'model': model, 'note': 'a long note ' * 12})\n"
        "        milepost.log_metrics({'roc_auc': 0.8123 + i / 100, 'pr_auc': 0.4567,\n"
        "                              'balanced_accuracy': 0.6543, 'log_loss': 0.2345,\n"
        "                              'brier': 0.0812, 'accuracy': 0.8956})\n"
        "with milepost.start_run(run_name='baseline'):\n"  # in the Default experiment
        "    milepost.log_metric('roc_auc', 0.5)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    subprocess.run([sys.executable, str(script)], cwd=root, check=True, env=env)
    return root


def _run_ids(project: Path) -> list[str]:
    out = run80("runs", "list", "-e", LONG_EXPERIMENT, "--json", cwd=project)
    return [r["run_id"] for r in json.loads(out.stdout)["runs"]]


def test_runs_list_shows_experiment_names_and_whole_values(project: Path) -> None:
    out = run80("runs", "list", "-e", LONG_EXPERIMENT, "-o", "metrics.roc_auc DESC", cwd=project)
    lines = out.stdout.splitlines()
    assert lines[0] == f"experiment {LONG_EXPERIMENT}"  # one experiment: said once, by name
    for run_id in _run_ids(project):
        row = next(line for line in lines if run_id[:12] in line)
        # names and the metric the runs are ordered by, whole on the run's line
        assert "gradient-boosting-v2" in row or "logistic-regression" in row, out.stdout
        assert "0.8123" in row or "0.8223" in row, out.stdout
    assert "…" not in out.stdout
    assert "5 more metric(s)" in out.stdout  # the other metrics do not fit: said so
    # runs of several experiments: a column of names (never ids), still 80 columns wide
    both = run80("runs", "list", "-o", "metrics.roc_auc DESC", cwd=project).stdout
    assert "experiment" in both.splitlines()[0], both
    assert re.search(r"baseline\s+Default\s+FINISHED", both), both
    assert "…" not in both and "customer-" in both  # long names fold, nothing is cut


def test_runs_show_and_compare_at_80_columns(project: Path) -> None:
    first, second = _run_ids(project)
    show = run80("runs", "show", first[:12], cwd=project).stdout
    assert f"experiment {LONG_EXPERIMENT}" in show
    assert "balanced_accuracy" in show and "…" not in show
    # the long note wraps between words: every word stays whole
    assert all(w in {"a", "long", "note"} for w in _cells(show, "note")), show
    compare = run80("runs", "compare", first[:12], second[:12], cwd=project).stdout
    assert "metrics.balanced_accuracy" in compare and "…" not in compare


def _cells(text: str, key: str) -> list[str]:
    """The words of a key's value column, over its wrapped lines."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [key])
    words = lines[start].split()[1:]
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        words += line.split()
    return words


def test_audit_and_experiments_at_80_columns(project: Path) -> None:
    audit = run80("audit", "list", cwd=project).stdout
    for action in ("run.start", "run.end", "experiment.create"):
        assert any(action in line.split() for line in audit.splitlines()), audit
    assert "…" not in audit
    experiments = run80("experiments", "list", cwd=project).stdout
    assert LONG_EXPERIMENT in experiments


def test_info_shows_the_value_in_force(tmp_path: Path) -> None:
    out = run80("info", cwd=tmp_path).stdout
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    for key in ("online_uri", "offline_uri", "user", "s3_endpoint_url", "trusted_types"):
        assert rows[key][0] != "-", (key, rows[key])  # the value in force, not a dash
        assert rows[key][-1] == "default", (key, rows[key])
    assert rows["online_uri"][0].startswith("sqlite:///")
    assert rows["user"][1:3] == ["(the", "OS"]
    data = json.loads(run80("info", "--json", cwd=tmp_path).stdout)
    assert data["settings"]["online_uri"]["value"].endswith("/.milepost/online.db")
    assert data["settings"]["offline_uri"]["value"].endswith("/.milepost/offline")
    assert data["settings"]["user"] == {"value": data["actor"], "source": "default"}


def test_fit_table_leaves_out_optional_columns_and_keeps_values_whole() -> None:
    rows = [["0123456789ab", "a reason that is long enough to wrap twice " * 2, "0.8123"]]
    columns = ["run id", Col("reason", wrap=True), Col("roc_auc", justify="right")]
    table, hidden = fit_table(columns, rows, optional=1, width=32)
    assert hidden == 1 and len(table.columns) == 2
    with console.capture() as capture:
        console.print(table, width=32)
    text = capture.get()
    assert all(len(line) <= 32 for line in text.splitlines())
    assert "0123456789ab" in text and "…" not in text
    words = {w for w in text.split() if not w.startswith("─")}
    allowed = {"a", "reason", "that", "is", "long", "enough", "to", "wrap", "twice"}
    assert words <= allowed | {"run", "id", "0123456789ab"}, text  # no word split
    table, hidden = fit_table(columns, rows, optional=1, width=120)
    assert hidden == 0 and len(table.columns) == 3


@pytest.fixture(scope="module")
def registry_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset, two model versions with long reasons, a promotion and an endpoint."""
    root = tmp_path_factory.mktemp("registry-tables")
    script = root / "setup.py"
    script.write_text(
        "import milepost, pandas as pd\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "frame = pd.DataFrame({'tenure_months': [1.0, 5.0, 9.0, 30.0] * 5,\n"
        "                      'plan': ['basic', 'premium', 'basic', 'standard'] * 5,\n"
        "                      'churned': [1, 0, 1, 0] * 5,\n"
        "                      'event_timestamp': pd.date_range('2026-01-01', periods=20,\n"
        "                                                       freq='D', tz='UTC')})\n"
        "v = milepost.data.register('customer-snapshots-2026', frame,\n"
        "                           description='monthly customer snapshots ' * 4)\n"
        "c = milepost.Client()\n"
        "for C in (0.1, 1.0):\n"
        "    with milepost.start_run(experiment='tables'):\n"
        "        milepost.log_input(v, role='train')\n"
        "        milepost.log_metrics({'roc_auc': 0.81234 + C / 100, 'pr_auc': 0.4567})\n"
        "        m = LogisticRegression(C=C).fit(frame[['tenure_months']], frame['churned'])\n"
        "        x = frame[['tenure_months']]\n"
        "        milepost.log_model(m, 'churn-propensity', input_example=x)\n"
        "c.promote('churn-propensity', 1, 'Staging',\n"
        "          reason='a reason that is long enough to wrap over several lines ' * 2)\n"
        "c.promote('churn-propensity', 1, 'Production', reason='the baseline')\n"
        "milepost.get_runtime().serving.create('churn-endpoint', 'churn-propensity')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    subprocess.run([sys.executable, str(script)], cwd=root, check=True, env=env)
    return root


@pytest.mark.parametrize(
    "args",
    [
        ("data", "list"),
        ("data", "show", "customer-snapshots-2026"),
        ("models", "list"),
        ("models", "list", "churn-propensity"),
        ("models", "versions", "churn-propensity"),  # the hidden old name
        ("models", "show", "churn-propensity"),
        ("models", "history", "churn-propensity"),
        ("promotions", "list", "--status", "all"),
        ("endpoints", "list"),
        ("endpoints", "show", "churn-endpoint"),
    ],
    ids=" ".join,
)
def test_registry_data_and_deploy_tables_at_80_columns(
    registry_project: Path, args: tuple[str, ...]
) -> None:
    out = run80(*args, cwd=registry_project).stdout  # every line <= 80 columns
    assert "…" not in out, out  # no value cut short
    for whole in ("customer-snapshots-2026", "churn-propensity", "churn-endpoint"):
        # a long name is either absent or printed whole (never split over lines)
        assert whole[:10] not in out or whole in out, out
