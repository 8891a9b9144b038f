"""Data versioning and validation on every metadata backend."""

from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

import milepost
from milepost import Client, Runtime
from milepost.data import (
    Between,
    Distribution,
    Freshness,
    InSet,
    NotNull,
    RowCount,
    Suite,
    Unique,
)
from milepost.demo.data import generate_customers
from milepost.errors import InvalidInput, NotFound, ValidationFailed


@pytest.fixture
def customers() -> pd.DataFrame:
    return generate_customers(1200, seed=11)


def test_register_round_trips_bit_identical(runtime: Runtime, customers: pd.DataFrame) -> None:
    v = milepost.data.register("customers", customers, description="first batch")
    assert (v.name, v.version, v.num_rows, v.num_files) == ("customers", 1, 1200, 1)
    assert v.columns == list(customers.columns)
    pd.testing.assert_frame_equal(v.to_pandas(), customers)
    again = milepost.data.get("customers@1")
    assert again.content_hash == v.content_hash and again.description == "first batch"
    assert again.to_arrow().equals(pa.Table.from_pandas(customers))


def test_same_content_is_the_same_version(
    runtime: Runtime, customers: pd.DataFrame, tmp_path: Path
) -> None:
    v1 = milepost.data.register("customers", customers)
    path = tmp_path / "customers.parquet"
    pq.write_table(pa.Table.from_pandas(customers), path, row_group_size=100)
    v_file = milepost.data.register("customers", str(path))
    assert (v_file.version, v_file.content_hash) == (1, v1.content_hash)
    v2 = milepost.data.register("customers", customers.iloc[:-1])
    assert v2.version == 2
    assert [v.version for v in milepost.data.list_versions("customers")] == [1, 2]
    with pytest.warns(DeprecationWarning, match="milepost.data.list_versions"):
        assert milepost.data.versions("customers") == milepost.data.list_versions("customers")
    assert milepost.data.get("customers").version == 2  # latest
    other = milepost.data.register("copy", customers)  # another name: its own version 1
    assert (other.ref, other.content_hash) == ("copy@1", v1.content_hash)
    events = Client().list_audit_events(action="dataset.register")
    assert sorted(e.object_id for e in events) == ["copy@1", "customers@1", "customers@2"]


def test_profile_describes_each_column(runtime: Runtime, customers: pd.DataFrame) -> None:
    customers.loc[:9, "monthly_spend"] = np.nan
    p = milepost.data.register("customers", customers).profile
    spend = p["monthly_spend"]
    assert spend["nulls"] == 10 and spend["null_fraction"] == pytest.approx(10 / 1200)
    assert spend["min"] == pytest.approx(customers["monthly_spend"].min())
    assert spend["mean"] == pytest.approx(customers["monthly_spend"].mean())
    assert spend["std"] == pytest.approx(customers["monthly_spend"].std(), rel=1e-6)
    assert spend["quantiles"]["0.5"] == pytest.approx(customers["monthly_spend"].median(), rel=0.05)
    plan = p["plan"]
    assert plan["kind"] == "categorical"
    assert (plan["distinct"], plan["distinct_exact"]) == (customers["plan"].nunique(), True)
    top = customers["plan"].value_counts()
    assert plan["top"][0] == {"value": top.index[0], "count": int(top.iloc[0])}
    ts = p["event_timestamp"]
    assert ts["min"].startswith(str(customers["event_timestamp"].min().date()))


def test_runs_record_their_inputs(runtime: Runtime, customers: pd.DataFrame) -> None:
    train = milepost.data.register("customers", customers)
    with milepost.start_run(experiment="lineage") as run:
        milepost.log_input(train, role="train")
        milepost.log_input("customers@1", role="eval")
        milepost.log_input(train, role="train")  # recorded once
    inputs = runtime.data.inputs_of_run(run.run_id)
    assert [(i.ref, i.role) for i in inputs] == [("customers@1", "train"), ("customers@1", "eval")]
    assert {u.run_id for u in milepost.data.runs_using("customers@1")} == {run.run_id}
    with milepost.start_run(), pytest.raises(InvalidInput, match="role"):
        milepost.log_input(train, role="Not A Role!")


def test_unknown_names_and_versions(runtime: Runtime, customers: pd.DataFrame) -> None:
    milepost.data.register("customers", customers)
    with pytest.raises(NotFound, match="Did you mean 'customers'"):
        milepost.data.get("customer@1")
    with pytest.raises(NotFound, match="no version 7; the newest is 1"):
        milepost.data.get("customers@7")
    with pytest.raises(InvalidInput, match="invalid version"):
        milepost.data.get("customers@x")
    with pytest.raises(InvalidInput, match="Dataset name"):
        milepost.data.register("bad name/", customers)


def test_empty_data_registers_nothing(runtime: Runtime, customers: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="no rows"):
        milepost.data.register("customers", customers.iloc[:0])
    with runtime.db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM dataset_versions")).scalar() == 0


def test_diff(runtime: Runtime, customers: pd.DataFrame) -> None:
    milepost.data.register("customers", customers)
    changed = (
        customers.drop(columns=["discount_pct"])
        .assign(age=customers["age"].astype("float64") + 1, vip=False)
        .iloc[:1000]
    )
    milepost.data.register("customers", changed)
    d = milepost.data.diff("customers@1", "customers@2").to_dict()
    assert d["rows"] == {"from": 1200, "to": 1000, "change": -200}
    assert [c["name"] for c in d["columns_added"]] == ["vip"]
    assert [c["name"] for c in d["columns_removed"]] == ["discount_pct"]
    assert d["columns_retyped"] == [{"name": "age", "from": "int64", "to": "double"}]
    assert "mean" in d["stats"]["age"]
    assert milepost.data.diff("customers@1", "customers@1").to_dict()["same_content"] is True


SUITE_YAML = """
name: customers
checks:
  - {kind: schema, columns: {customer_id: integer, plan: string, age: numeric}}
  - {kind: not_null, column: customer_id}
  - {kind: unique, columns: [customer_id]}
  - {kind: between, column: age, min: 18, max: 100}
  - {kind: in_set, column: plan, values: [basic, standard, premium]}
  - {kind: row_count, min: 100}
  - {kind: freshness, column: event_timestamp, max_age: 2d}
  - {kind: matches, column: region, pattern: "[a-z]+"}
  - {kind: expression, expression: "monthly_spend > -50"}
  - {kind: distribution, column: monthly_spend, reference: "customers@1", threshold: 0.2}
  - {kind: distribution, column: plan, reference: "customers@1"}
  - {kind: distribution, column: age, reference: "customers@1", method: ks, threshold: 0.001}
"""


def _now(df: pd.DataFrame) -> datetime:
    return df["event_timestamp"].max().to_pydatetime().astimezone(UTC)


def test_a_good_batch_passes_and_the_result_is_stored(
    runtime: Runtime, customers: pd.DataFrame, tmp_path: Path
) -> None:
    v = milepost.data.register("customers", customers)
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(SUITE_YAML)
    result = milepost.data.validate(v, suite_file, strict=True, now=_now(customers))
    assert result.success, result.to_text()
    assert len(result.checks) == 12 and result.dataset_ref == "customers@1"
    stored = runtime.data.validations("customers@1")
    assert [r.result_id for r in stored] == [result.result_id]
    assert stored[0].to_dict() == result.to_dict()
    assert Client().list_audit_events(action="dataset.validate")[0].object_id == "customers@1"


def test_a_corrupted_batch_fails_with_every_reason(
    runtime: Runtime, customers: pd.DataFrame
) -> None:
    milepost.data.register("customers", customers)
    bad = generate_customers(1200, seed=12, shift=2.0)
    bad.loc[0, "age"] = 150
    bad.loc[1, "plan"] = "platinum"
    bad.loc[2, "customer_id"] = bad.loc[3, "customer_id"]
    bad["customer_id"] = bad["customer_id"].astype("Int64")
    bad.loc[4, "customer_id"] = None
    result = milepost.data.validate(bad, Suite.from_yaml(SUITE_YAML), now=_now(customers))
    failed = {c.kind for c in result.failing}
    assert {"not_null", "unique", "between", "in_set", "distribution"} <= failed
    between = next(c for c in result.checks if c.kind == "between")
    assert between.failing_rows == 1 and between.examples[0]["age"] == 150
    assert next(iter(between.examples[0])) == "age"  # the checked column first
    text = result.to_text()
    assert "FAILED" in text and "age in range" in text and "platinum" in text
    html = result.to_html()
    assert 'id="verdict" class="fail"' in html and "platinum" in html
    with pytest.raises(ValidationFailed, match=r"failed .* checks of suite 'customers'") as info:
        milepost.data.validate(bad, Suite.from_yaml(SUITE_YAML), strict=True, now=_now(customers))
    assert info.value.result is not None and not info.value.result.success
    assert info.value.code == "validation_failed"


def test_mostly_tolerates_a_fraction(runtime: Runtime, customers: pd.DataFrame) -> None:
    customers.loc[:11, "age"] = 10  # 1% of rows
    suite = Suite(name="s", checks=[Between(column="age", min=18, mostly=0.98)])
    assert milepost.data.validate(customers, suite).success
    strict = Suite(name="s", checks=[Between(column="age", min=18)])
    assert not milepost.data.validate(customers, strict).success


def test_a_ref_validates_its_version_like_the_cli_does(
    runtime: Runtime, customers: pd.DataFrame
) -> None:
    milepost.data.register("customers", customers)
    suite = Suite.from_yaml(SUITE_YAML)
    result = milepost.data.validate("customers@1", suite, now=_now(customers))
    assert result.success and result.dataset_ref == "customers@1"
    assert [r.result_id for r in runtime.data.validations("customers@1")] == [result.result_id]
    with pytest.raises(InvalidInput, match=r"no-such-file\.parquet"):  # neither a file nor a ref
        milepost.data.validate("no-such-file.parquet", suite)


def test_missing_columns_fail_the_check_not_the_run(
    runtime: Runtime, customers: pd.DataFrame
) -> None:
    suite = Suite(
        name="s",
        checks=[
            NotNull(column="agee"),
            RowCount(min=1),
            Unique(columns=["nope"]),
            InSet(column="plan", values=["basic"]),
        ],
    )
    result = milepost.data.validate(customers, suite)
    messages = [c.message for c in result.checks]
    assert messages[0].startswith("column 'agee' does not exist. Did you mean 'age'")
    assert result.checks[1].success and not result.checks[2].success


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: s\nchecks: []", "checks"),
        ("name: s\nchecks:\n  - {kind: nope, column: a}", "kind"),
        ("name: s\nchecks:\n  - {kind: between, column: a, low: 1}", "low"),
        ("name: [unclosed", "not valid YAML"),
    ],
)
def test_bad_suites_are_refused_clearly(text: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        Suite.from_yaml(text)


def test_suite_round_trips_through_yaml() -> None:
    suite = Suite.from_yaml(SUITE_YAML)
    assert Suite.from_yaml(suite.to_yaml()) == suite
    assert suite.fingerprint() == Suite.from_yaml(suite.to_yaml()).fingerprint()


def test_distribution_against_unknown_reference(runtime: Runtime, customers: pd.DataFrame) -> None:
    suite = Suite(name="s", checks=[Distribution(column="age", reference="nothing@1")])
    with pytest.raises(NotFound, match="nothing"):
        milepost.data.validate(customers, suite)


def _register(args: tuple[str, str, str]) -> tuple[int, str]:
    uri, home, path = args
    milepost.configure(metadata_uri=uri, home=Path(home))
    v = milepost.data.register("shared", path)
    milepost.reset()
    return v.version, v.content_hash


def test_concurrent_registration_of_the_same_content_makes_one_version(
    runtime: Runtime, customers: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pandas(customers), path)
    with mp.get_context("spawn").Pool(3) as pool:
        out = pool.map(_register, [(runtime.db.uri, str(tmp_path / "home"), str(path))] * 3)
    assert len(set(out)) == 1 and out[0][0] == 1
    assert [v.version for v in milepost.data.list_versions("shared")] == [1]


# -- one logical table, one version --------------------------------------------------------


def test_the_same_data_in_any_format_is_one_version(
    runtime: Runtime, customers: pd.DataFrame, tmp_path: Path
) -> None:
    v1 = milepost.data.register("customers", customers)
    customers.to_csv(tmp_path / "c.csv", index=False)
    narrow = pa.Table.from_pandas(
        customers.astype({"age": "int32", "plan": "category"}).assign(
            event_timestamp=customers["event_timestamp"].dt.as_unit("ns")
        )
    )
    narrow = narrow.set_column(
        narrow.schema.get_field_index("region"), "region", narrow["region"].cast(pa.string())
    )
    pq.write_table(narrow, tmp_path / "narrow.parquet", row_group_size=100)
    for data in (str(tmp_path / "c.csv"), str(tmp_path / "narrow.parquet"), narrow):
        again = milepost.data.register("customers", data)
        assert (again.version, again.content_hash) == (1, v1.content_hash)
    assert [v.version for v in milepost.data.list_versions("customers")] == [1]
    assert v1.hash_version == 2 and v1.to_dict()["hash_version"] == 2


def test_versions_registered_before_hash_version_2_are_still_recognised(
    metadata_uri: str, customers: pd.DataFrame, tmp_path: Path
) -> None:
    from milepost.data._hash import legacy_content_hash
    from milepost.data._ingest import stage
    from milepost.stores.metadata import MetadataStore
    from milepost.stores.schema import dataset_versions, datasets

    staged = stage(customers, workdir=tmp_path / "w", legacy=True)
    old_hash, rows = legacy_content_hash(staged.files, staged.schema)
    old = MetadataStore(metadata_uri, auto_migrate=False)
    old.upgrade("0009")  # a store written before revision 0012, as that Milepost wrote it
    with old.write() as conn:
        dataset_id = conn.execute(
            sa.insert(datasets)
            .values(name="customers", created_by="old", created_at=1)
            .returning(datasets.c.dataset_id)
        ).scalar_one()
        conn.execute(
            sa.insert(dataset_versions).values(
                dataset_id=dataset_id,
                version=1,
                content_hash=old_hash,
                schema_json="[]",
                num_rows=rows,
                num_files=0,
                size_bytes=0,
                profile_json="{}",
                created_by="old",
                created_at=1,
            )
        )
    old.dispose()
    milepost.configure(home=tmp_path / "home", metadata_uri=metadata_uri)
    try:
        again = milepost.data.register("customers", customers)
        assert (again.version, again.content_hash, again.hash_version) == (1, old_hash, 1)
        changed = milepost.data.register("customers", customers.iloc[:-1])
        assert (changed.version, changed.hash_version) == (2, 2)
        assert milepost.data.register("customers", customers.iloc[:-1]).version == 2
    finally:
        milepost.reset()


def test_diff_never_shows_a_change_that_prints_as_none(
    runtime: Runtime, customers: pd.DataFrame
) -> None:
    def shown(value: object) -> str:  # as `milepost data diff` prints a statistic
        return "-" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)

    milepost.data.register("customers", customers)  # plan large_string, age int64
    same_looking = customers.astype({"age": "int32"}).assign(
        plan=customers["plan"].astype("string[python]"),  # string
        monthly_spend=customers["monthly_spend"] + 1e-12,  # other bits, the same 6 digits
    )
    v2 = milepost.data.register("customers", same_looking)
    assert v2.version == 2 and v2.schema[6].type != milepost.data.get("customers@1").schema[6].type
    d = milepost.data.diff("customers@1", "customers@2")
    assert (d.retyped, d.stats, d.added, d.removed) == ([], {}, [], [])
    assert not d.changed
    assert repr(d) == "DatasetDiff(customers@1 -> customers@2: rows 1,200 -> 1,200)"
    fewer = milepost.data.register("customers", customers.iloc[:1000])
    d = milepost.data.diff("customers@1", fewer)
    assert d.stats and d.changed
    for changes in d.stats.values():
        for before, after in changes.values():
            assert shown(before) != shown(after)


# -- reports whose numbers add up ----------------------------------------------------------


def test_reports_say_what_they_counted_in_every_form(
    runtime: Runtime, customers: pd.DataFrame
) -> None:
    v = milepost.data.register("customers", customers)
    newest = customers["event_timestamp"].max().to_pydatetime()
    suite = Suite(
        name="s",
        checks=[
            RowCount(min=1000),
            RowCount(max=100),
            Unique(columns=["customer_id"]),
            Between(column="age", min=18),
            Freshness(column="event_timestamp", max_age="45d"),
            Distribution(column="plan", reference=v.ref),
            Distribution(column="age", reference=v.ref, method="ks", threshold=0.01),
        ],
    )
    result = milepost.data.validate(
        v, suite, now=newest + timedelta(days=212, hours=22, minutes=34, seconds=18.9)
    )
    assert result.summary == "5 passed, 2 failed of 7 checks"
    by_kind = [c.summary for c in result.checks]
    assert by_kind[0] == "1,200 rows (at least 1,000 rows)"
    assert by_kind[1] == "1,200 rows, expected at most 100 rows"
    assert by_kind[2] == "no customer_id repeats among 1,200 rows"
    assert by_kind[3] == "all 1,200 rows pass (age >= 18)"
    assert by_kind[4].endswith("is 212 days 22 h old, more than 45 days")
    assert by_kind[5] == "plan distribution vs customers@1: PSI 0.000 <= 0.2"
    assert by_kind[6].startswith("age distribution vs customers@1: KS 0.000, p-value 1 >= 0.01")
    text = result.to_text()
    assert "FAILED (5 passed, 2 failed of 7 checks, 1,200 rows)" in text
    assert "between" not in text and "any" not in text and "{" not in text
    assert "  ok   plan distribution vs customers@1: PSI 0.000 <= 0.2" in text
    html = result.to_html()
    assert "5 passed, 2 failed of 7 checks on 1,200 rows" in html
    for c in result.checks:
        assert f"<td>{escape(c.summary)}</td>" in html
    stored = runtime.data.get_validation(result.result_id).to_dict()
    assert stored == result.to_dict()
    assert (stored["num_checks"], stored["num_passed"], stored["num_failed"]) == (7, 5, 2)
    assert [c["summary"] for c in stored["checks"]] == by_kind


def test_unique_counts_the_rows_it_checked(runtime: Runtime, customers: pd.DataFrame) -> None:
    suite = Suite(name="s", checks=[Unique(columns=["customer_id", "plan"])])
    passed = milepost.data.validate(customers, suite).checks[0]
    assert passed.summary == "no (customer_id, plan) repeats among 1,200 rows"
    customers.loc[5, ["customer_id", "plan"]] = customers.loc[6, ["customer_id", "plan"]]
    c = milepost.data.validate(customers, suite).checks[0]
    assert c.summary == "1 value of (customer_id, plan) repeats, on 2 of 1,200 rows"
    assert c.observed == {"duplicated_values": 1, "rows_with_duplicates": 2, "rows": 1200}


def test_profile_distinct_counts_are_exact(runtime: Runtime, customers: pd.DataFrame) -> None:
    ids = customers.assign(code=[f"cust-{i:05d}" for i in range(len(customers))])
    p = milepost.data.register("customers", ids).profile
    assert (p["code"]["distinct"], p["code"]["distinct_exact"]) == (1200, True)
    assert p["plan"]["distinct"] == customers["plan"].nunique()
