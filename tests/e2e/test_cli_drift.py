"""`milepost drift REFERENCE CURRENT` as a user types it, and its refusals of bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from milepost.cli import main
from milepost.demo.data import generate_customers
from tests.e2e.test_cli import cli

COLUMNS = ["age", "monthly_spend", "support_tickets", "plan", "region"]


def test_drift_between_a_csv_and_a_parquet_file_writes_the_report(tmp_path: Path) -> None:
    generate_customers(2000, seed=1)[COLUMNS].to_csv(tmp_path / "train.csv", index=False)
    shifted = generate_customers(1500, seed=2, shift=1.0)[COLUMNS]
    shifted.to_parquet(tmp_path / "today.parquet")

    out = cli(
        "drift", "train.csv", "today.parquet", "--categorical", "plan",
        "--report", "reports/drift.html", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    summary = data["summary"]
    assert summary["reference"] == {"rows": 2000, "window": "train.csv"}
    assert summary["current"] == {"rows": 1500, "window": "today.parquet"}
    assert summary["features"] == len(COLUMNS)
    assert "support_tickets" in summary["drifted_names"]  # shifted by the generator
    assert {r["feature"] for r in data["features"]} == set(COLUMNS)
    assert {r["kind"] for r in data["features"] if r["feature"] == "plan"} == {"categorical"}

    html = tmp_path / "reports" / "drift.html"
    written = json.loads((tmp_path / "reports" / "drift.json").read_text())
    assert data["report"] == {"html": "reports/drift.html", "json": "reports/drift.json"}
    assert written["summary"] == summary
    page = html.read_text()
    k, n = summary["drifted_features"], summary["features"]
    assert f"{k} of {n} features" in page
    assert page.count('<svg class="chart dist"') == len(COLUMNS)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, " ".join((out + err).split())


def test_bad_files_get_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.csv"
    generate_customers(200, seed=1)[COLUMNS].to_csv(good, index=False)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    (tmp_path / "empty.csv").write_text("")

    code, text = _run(["drift", str(good), str(tmp_path / "nope.csv")], capsys)
    assert code == 1 and "No current file" in text and "nope.csv" in text, text
    code, text = _run(["drift", str(tmp_path / "notes.txt"), str(good)], capsys)
    assert code == 1 and "is not a .csv or .parquet file" in text, text
    code, text = _run(["drift", str(good), str(tmp_path / "broken.parquet")], capsys)
    assert code == 1 and "Cannot read the current file" in text and "as PARQUET" in text, text
    code, text = _run(["drift", str(tmp_path / "empty.csv"), str(good)], capsys)
    assert code == 1 and "Cannot read the reference file" in text and "header row" in text
    code, text = _run(["drift", str(good), str(good), "--categorical", "regoin"], capsys)
    assert code == 1 and "'regoin'" in text and "region" in text, text
    assert "Traceback" not in text
