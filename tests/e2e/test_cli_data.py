"""`milepost data ...` as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from milepost.demo.data import generate_customers
from tests.e2e.test_cli import cli_in_process

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
    out = cli_in_process(
        "data", "register", "customers", "batch1.parquet", "--description", "jan", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert "customers@1" in out.stdout and "800 rows" in out.stdout
    again = json.loads(  # `data add`, the old name, still answers (hidden from --help)
        cli_in_process("data", "add", "customers", "batch1.parquet", "--json", cwd=tmp_path).stdout
    )
    assert again["version"] == 1
    second = json.loads(
        cli_in_process("data", "register", "customers", "batch2.csv", "--json", cwd=tmp_path).stdout
    )
    assert second["version"] == 2 and second["num_rows"] == 700
    listed = json.loads(cli_in_process("data", "list", "--json", cwd=tmp_path).stdout)
    assert listed == [{**listed[0], "name": "customers", "latest_version": 2, "num_versions": 2}]
    shown = cli_in_process("data", "show", "customers@1", cwd=tmp_path)
    assert "monthly_spend" in shown.stdout and "profile" in shown.stdout
    diff = json.loads(
        cli_in_process("data", "diff", "customers@1", "customers@2", "--json", cwd=tmp_path).stdout
    )
    assert diff["rows"]["change"] == -100
    (tmp_path / "suite.yaml").write_text(SUITE)
    ok = cli_in_process(
        "data", "validate", "customers@1", "suite.yaml", "--html", "r.html", cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASSED" in ok.stdout and (tmp_path / "r.html").read_text().count("✔") == 3
    shown = json.loads(cli_in_process("data", "show", "customers@1", "--json", cwd=tmp_path).stdout)
    assert shown["validations"][0]["success"] is True and shown["versions"] == [1, 2]


def test_failing_validation_exits_1_with_the_reasons(tmp_path: Path) -> None:
    frame = generate_customers(300, seed=6)
    frame.loc[0, "plan"] = "platinum"
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "bad.parquet")
    assert cli_in_process("data", "register", "c", "bad.parquet", cwd=tmp_path).returncode == 0
    (tmp_path / "suite.yaml").write_text(SUITE)
    bad = cli_in_process("data", "validate", "c", "suite.yaml", cwd=tmp_path)
    assert bad.returncode == 1
    assert "FAIL plan allowed values" in bad.stdout and "platinum" in bad.stdout


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.parquet").write_text("garbage")
    out = cli_in_process("data", "register", "x", "a.parquet", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "Error [invalid_input]: Cannot read a.parquet as Parquet" in out.stderr
    missing = cli_in_process("data", "show", "nothing", cwd=tmp_path)
    assert missing.returncode == 1 and "milepost data list" in missing.stderr


def test_formats_diff_and_reports_read_true(tmp_path: Path) -> None:
    frame = generate_customers(600, seed=8)
    frame.to_csv(tmp_path / "c.csv", index=False)
    table = pa.Table.from_pandas(frame.astype({"age": "int32"}))
    table = table.set_column(
        table.schema.get_field_index("plan"), "plan", table["plan"].cast(pa.string())
    )
    pq.write_table(table, tmp_path / "narrow.parquet")
    first = json.loads(
        cli_in_process("data", "register", "c", "c.csv", "--json", cwd=tmp_path).stdout
    )
    again = json.loads(
        cli_in_process("data", "register", "c", "narrow.parquet", "--json", cwd=tmp_path).stdout
    )
    assert again["version"] == first["version"] == 1
    # other physical types, the same visible statistics: a diff with nothing to show
    pq.write_table(
        pa.Table.from_pandas(frame.assign(monthly_spend=frame["monthly_spend"] + 1e-12)),
        tmp_path / "wide.parquet",
    )
    assert cli_in_process("data", "register", "c", "wide.parquet", cwd=tmp_path).returncode == 0
    diff = cli_in_process("data", "diff", "c@1", "c@2", cwd=tmp_path)
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout.splitlines()[1:] == ["rows: 600 → 600 (+0)"], diff.stdout
    shown = cli_in_process("data", "show", "c@1", "--json", cwd=tmp_path)
    plan = json.loads(shown.stdout)["profile"]["plan"]
    assert (plan["distinct"], plan["distinct_exact"]) == (frame["plan"].nunique(), True)
    (tmp_path / "suite.yaml").write_text(
        SUITE + "  - {kind: row_count, min: 1000}\n  - {kind: unique, columns: [customer_id]}\n"
    )
    out = cli_in_process("data", "validate", "c@1", "suite.yaml", cwd=tmp_path)
    assert out.returncode == 1
    assert "FAILED (4 passed, 1 failed of 5 checks, 600 rows)" in out.stdout
    assert "FAIL row count: 600 rows, expected at least 1,000 rows" in out.stdout
    assert "ok   customer_id unique: no customer_id repeats among 600 rows" in out.stdout
