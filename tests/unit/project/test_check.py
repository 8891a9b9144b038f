"""check_project: every check of a project, what a failure says, and that nothing runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from milepost.project import check_project, load_project
from tests._project import FixtureProject, write_project


@pytest.fixture
def fixture(tmp_path: Path) -> FixtureProject:
    # not on sys.path: check_project finds src/ itself, as before `pip install -e .`
    return write_project(tmp_path / "proj")


def _by_name(report: object) -> dict[tuple[str, str], object]:
    return {(c.name, c.target): c for c in report.checks}  # type: ignore[attr-defined]


def test_a_good_project_passes_every_check_without_opening_a_store(
    fixture: FixtureProject,
) -> None:
    before = list(sys.path)
    report = check_project(load_project(fixture.root))
    assert report.ok, report.failures
    assert sys.path == before  # the project's directories were on it only while importing
    details = {(c.name, c.target): c.detail for c in report.checks}
    pkg = fixture.package
    assert [c.name for c in report.checks] == [
        "project",
        "definitions",
        "policy",
        "triggers",
        "trigger",
        "trigger",
        "pipeline",
        "train",
        "sample_data",
        "tests",
        "tests",
    ]
    assert details[("definitions", f"{pkg}.features")] == (
        "1 entity, 1 feature view, 1 on-demand view (activity, basket)"
    )
    assert details[("policy", "policy.yaml")] == (
        "staging: data_validation; production: metric_vs_baseline; deploy: automatic "
        f"canary on {fixture.endpoint!r}: 50% → 100%, each step >= 0 s and >= 1 canary requests"
    )
    assert details[("triggers", "triggers.yaml")] == "2 triggers"
    assert details[("trigger", "nightly")] == (f"{pkg}.pipeline:release n=4 on schedule 0 3 * * *")
    assert (
        "monitor " + f"{pkg}-health is checked when the trigger is added"
        in (details[("trigger", "on-drift")])
    )
    assert details[("pipeline", f"{pkg}.pipeline:release")] == "pipeline release (n)"
    assert details[("tests", "tests/unit")] == "unit tests: 1 test file"
    assert not (fixture.root / ".milepost").exists()  # no store was opened
    assert report.to_dict()["ok"] is True


def test_each_failure_says_what_is_wrong_and_the_rest_still_runs(
    fixture: FixtureProject,
) -> None:
    pkg = fixture.package
    fixture.edit("features.py", "raise RuntimeError('definitions are broken')\n")
    (fixture.root / "policy.yaml").write_text("staging:\n  - {kind: data_validatoin}\n")
    (fixture.root / "triggers.yaml").write_text(
        f"""
- {{name: bad-cron, pipeline: {pkg}.pipeline:release, schedule: "61 * * * *"}}
- {{name: two-causes, pipeline: {pkg}.pipeline:release, schedule: "every 1h",
    on_drift: m}}
- {{name: bad-param, pipeline: {pkg}.pipeline:release, params: {{m: 1}},
    schedule: "every 1h"}}
- {{name: nowhere, pipeline: {pkg}.nowhere:release, schedule: "every 1h"}}
"""
    )
    fixture.edit("train.py", "fit = 3\n")
    toml = fixture.root / "milepost.toml"
    toml.write_text(toml.read_text().replace(".pipeline:release", ".data:sample"))
    (fixture.root / "tests" / "integration" / "test_integration.py").unlink()
    (fixture.root / "tests" / "integration").rmdir()

    report = check_project(load_project(fixture.root))
    assert not report.ok
    got = {(c.name, c.target): c for c in report.checks}
    failed = {key: c.detail for key, c in got.items() if not c.ok}
    assert set(failed) == {
        ("definitions", f"{pkg}.features"),
        ("policy", "policy.yaml"),
        ("trigger", "bad-cron"),
        ("trigger", "two-causes"),
        ("trigger", "bad-param"),
        ("trigger", "nowhere"),
        ("pipeline", f"{pkg}.data:sample"),
        ("train", f"{pkg}.train:fit"),
        ("tests", "tests/integration"),
    }
    assert "RuntimeError: definitions are broken" in failed[("definitions", f"{pkg}.features")]
    assert "data_validatoin" in failed[("policy", "policy.yaml")]
    assert "is not a five-field cron expression" in failed[("trigger", "bad-cron")]
    assert "exactly one cause; got schedule, on_drift" in failed[("trigger", "two-causes")]
    assert "has no parameter 'm'" in failed[("trigger", "bad-param")]
    assert f"Cannot import module '{pkg}.nowhere'" in failed[("trigger", "nowhere")]
    assert "is a function, not a milepost pipeline" in failed[("pipeline", f"{pkg}.data:sample")]
    assert "@milepost.pipelines.pipeline" in failed[("pipeline", f"{pkg}.data:sample")]
    assert "is a int, not a function" in failed[("train", f"{pkg}.train:fit")]
    assert "tests/integration does not exist" in failed[("tests", "tests/integration")]
    assert got[("sample_data", f"{pkg}.data:sample")].ok  # unaffected checks still pass
    assert got[("tests", "tests/unit")].ok


def test_missing_files_fail_unless_the_project_sets_them_to_null(
    fixture: FixtureProject,
) -> None:
    (fixture.root / "policy.yaml").unlink()
    (fixture.root / "triggers.yaml").unlink()
    report = check_project(load_project(fixture.root))
    failed = {c.name: c.detail for c in report.failures}
    assert set(failed) == {"policy", "triggers"}
    assert 'policy = ""' in failed["policy"]
    assert 'triggers = ""' in failed["triggers"]

    toml = fixture.root / "milepost.toml"  # TOML has no null: "" says "none"
    toml.write_text(
        toml.read_text()
        .replace('policy = "policy.yaml"', 'policy = ""')
        .replace('triggers = "triggers.yaml"', 'triggers = ""')
    )
    report = check_project(load_project(fixture.root))
    assert report.ok, report.failures
    assert {c.name for c in report.checks}.isdisjoint({"policy", "triggers", "trigger"})


def test_a_policy_that_deploys_elsewhere_than_the_project_endpoint_fails(
    fixture: FixtureProject,
) -> None:
    policy = fixture.root / "policy.yaml"
    policy.write_text(policy.read_text().replace(fixture.endpoint, "somewhere-else"))
    (check,) = check_project(load_project(fixture.root)).failures
    assert check.name == "policy"
    assert "'somewhere-else'" in check.detail
    assert fixture.endpoint in check.detail


def test_a_triggers_file_that_is_not_a_list_or_has_unknown_keys_fails(
    fixture: FixtureProject,
) -> None:
    triggers = fixture.root / "triggers.yaml"
    triggers.write_text("nightly: {schedule: '0 3 * * *'}\n")
    (check,) = check_project(load_project(fixture.root)).failures
    assert "must be a list of triggers" in check.detail
    triggers.write_text(f"- {{name: n, pipeline: {fixture.package}.pipeline:release, cron: x}}\n")
    (check,) = check_project(load_project(fixture.root)).failures
    assert "unknown key 'cron'" in check.detail
    assert "schedule" in check.detail  # the keys it may have


def test_a_project_file_that_does_not_parse_is_one_failed_check(tmp_path: Path) -> None:
    fixture = write_project(tmp_path / "proj")
    toml = fixture.root / "milepost.toml"
    toml.write_text(toml.read_text() + 'colour = "blue"\n')
    report = check_project(start=fixture.root)
    assert [(c.name, c.ok) for c in report.checks] == [("project", False)]
    assert "colour" in report.checks[0].detail
    report = check_project(start=tmp_path)  # no milepost.toml at all
    assert "not a Milepost project" in report.checks[0].detail
