"""`milepost data ...` as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from milepost.demo.data import generate_customers
from tests.e2e.test_cli import cli

SUITE = """
name: customers
checks:
  - {kind: not_null, column: customer_id}
  - {kind: between, column: age, min: 18, max: 100}
  - {kind: in_set, column: plan, values: [basic, standard, premium]}
"""


def test_add_list_show_diff_validate(tmp_path: Path) -> None:
    frame = generate_customers(800, seed=5)
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "batch1.parquet")
    frame.iloc[:700].to_csv(tmp_path / "batch2.csv", index=False)
    out = cli("data", "add", "customers", "batch1.parquet", "--description", "jan", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "customers@1" in out.stdout and "800 rows" in out.stdout
    again = json.loads(
        cli("data", "add", "customers", "batch1.parquet", "--json", cwd=tmp_path).stdout
    )
    assert again["version"] == 1
    second = json.loads(
        cli("data", "add", "customers", "batch2.csv", "--json", cwd=tmp_path).stdout
    )
    assert second["version"] == 2 and second["num_rows"] == 700
    listed = json.loads(cli("data", "list", "--json", cwd=tmp_path).stdout)
    assert listed == [{**listed[0], "name": "customers", "latest_version": 2, "num_versions": 2}]
    shown = cli("data", "show", "customers@1", cwd=tmp_path)
    assert "monthly_spend" in shown.stdout and "profile" in shown.stdout
    diff = json.loads(
        cli("data", "diff", "customers@1", "customers@2", "--json", cwd=tmp_path).stdout
    )
    assert diff["rows"]["change"] == -100
    (tmp_path / "suite.yaml").write_text(SUITE)
    ok = cli("data", "validate", "customers@1", "suite.yaml", "--html", "r.html", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASSED" in ok.stdout and (tmp_path / "r.html").read_text().count("✔") == 3
    shown = json.loads(cli("data", "show", "customers@1", "--json", cwd=tmp_path).stdout)
    assert shown["validations"][0]["success"] is True and shown["versions"] == [1, 2]


def test_failing_validation_exits_1_with_the_reasons(tmp_path: Path) -> None:
    frame = generate_customers(300, seed=6)
    frame.loc[0, "plan"] = "platinum"
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "bad.parquet")
    assert cli("data", "add", "c", "bad.parquet", cwd=tmp_path).returncode == 0
    (tmp_path / "suite.yaml").write_text(SUITE)
    bad = cli("data", "validate", "c", "suite.yaml", cwd=tmp_path)
    assert bad.returncode == 1
    assert "FAIL plan allowed values" in bad.stdout and "platinum" in bad.stdout


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.parquet").write_text("garbage")
    out = cli("data", "add", "x", "a.parquet", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "Error [invalid_input]: Cannot read a.parquet as Parquet" in out.stderr
    missing = cli("data", "show", "nothing", cwd=tmp_path)
    assert missing.returncode == 1 and "milepost data list" in missing.stderr
