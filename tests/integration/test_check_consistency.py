"""check_consistency on a small project: consistent as written; a transform that reads
its batch, or an online store that holds other values, is caught naming the view, the
feature, an entity and both values."""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path

import pytest

from milepost import Runtime
from milepost.errors import ConfigError, InvalidInput, NotFound
from milepost.features import FeatureStore
from milepost.features.online import entity_key, pack, unpack
from milepost.project import check_consistency, load_project, sandbox
from tests._project import BATCH_MEAN, rewrite, write_project


def test_the_project_as_written_is_consistent(tmp_path: Path) -> None:
    fixture = write_project(tmp_path / "proj")
    reports = check_consistency(load_project(fixture.root))
    assert [(r.view, r.kind, r.checked, r.ok) for r in reports] == [
        ("activity:v1", "feature_view", 40, True),
        ("basket:v1", "on_demand", 40, True),
    ]
    assert reports[0].at == "2026-05-31T00:00:01+00:00"  # just after the sample's newest time
    assert [r.with_values for r in reports] == [40, 40]  # values compared, not only nulls
    assert reports[1].mismatches == {"spend_share": 0}
    # only what was asked, and fewer rows
    (report,) = check_consistency(load_project(fixture.root), views=["basket"], sample=7)
    assert (report.view, report.checked, report.ok) == ("basket:v1", 7, True)


def test_an_on_demand_transform_using_a_batch_statistic_fails_naming_both_values(
    tmp_path: Path,
) -> None:
    fixture = write_project(tmp_path / "proj", denominator=BATCH_MEAN)
    activity, basket = check_consistency(load_project(fixture.root))
    assert activity.ok
    assert not basket.ok
    assert basket.view == "basket:v1"
    assert basket.mismatches == {"spend_share": 40}  # every row: one row's mean is itself
    example = basket.examples[0]
    assert example["feature"] == "spend_share"
    entity = example["entity"]
    assert set(entity) == {"customer_id", "basket_value"}
    # the two values, recomputed from the sample: the row's own basket value online,
    # the mean over every row offline

    sys.path.insert(0, str(fixture.root / "src"))
    try:
        frames = import_module(f"{fixture.package}.data").sample()
    finally:
        sys.path.remove(str(fixture.root / "src"))
    customers = frames[f"{fixture.package}.customers"]
    labels = frames[f"{fixture.package}.labels"]
    newest = customers.sort_values("event_timestamp").groupby("customer_id").last()
    spend = newest.loc[entity["customer_id"], "monthly_spend"]
    assert example["online"] == pytest.approx(spend / entity["basket_value"])
    assert example["offline"] == pytest.approx(spend / labels["basket_value"].mean())


def test_a_tampered_online_store_fails_in_store_mode(tmp_path: Path) -> None:
    fixture = write_project(tmp_path / "proj", fixed_now=False)
    project = load_project(fixture.root)
    home = project.settings.settings.home  # the project's own stores
    with sandbox(project, home=home):  # loads them: sample data, apply, materialize
        pass
    assert all(r.ok for r in check_consistency(project, store=True))

    with Runtime(project.settings) as rt:  # write another row through the store's API
        online = rt.features.online
        key = entity_key((7,))
        (raw,) = online.read("activity:v1", [key])
        assert raw is not None
        event_ts, created_ts, values = unpack(raw)
        tampered = [v * 2 if isinstance(v, float) else v for v in values]
        online.write(
            "activity:v1",
            [(key, event_ts, created_ts + 1, pack(event_ts, created_ts + 1, tampered))],
        )

    activity, basket = check_consistency(project, store=True)
    assert not activity.ok
    assert activity.mismatches["monthly_spend"] == 1
    assert activity.mismatches["support_tickets"] == 0  # an int: not changed
    bad = next(e for e in activity.examples if e["feature"] == "monthly_spend")
    assert bad["entity"] == {"customer_id": 7}
    assert bad["online"] == pytest.approx(2 * bad["offline"])
    assert not basket.ok  # it reads activity's online value for customer 7 too
    assert basket.mismatches == {"spend_share": 1}


def test_refusals_name_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = write_project(tmp_path / "proj")
    project = load_project(fixture.root)
    with pytest.raises(NotFound, match=r"no view 'baskets'.*basket"):
        check_consistency(project, views=["baskets"])

    # no dataset holds the request column
    data = fixture.src / "data.py"
    rewrite(data, '"basket_value"', '"basket_total"')  # the same length: see rewrite
    with pytest.raises(InvalidInput, match=r"'basket' needs request data \(basket_value\)") as exc:
        check_consistency(load_project(fixture.root), views=["basket"])
    assert f"{fixture.package}.labels lacks basket_value" in exc.value.message
    # the configured stores hold nothing yet
    with pytest.raises(InvalidInput, match=r"labels: not registered") as exc:
        check_consistency(load_project(fixture.root), views=["basket"], store=True)
    assert "register it in the stores" in (exc.value.hint or "")

    monkeypatch.setenv("MILEPOST_URL", "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="--store"):
        check_consistency(load_project(fixture.root), store=True)


def test_the_feature_store_checks_an_on_demand_view_only_with_request_rows(
    tmp_path: Path,
) -> None:
    fixture = write_project(tmp_path / "proj", fixed_now=False, denominator=BATCH_MEAN)
    with sandbox(load_project(fixture.root)) as project:
        store = FeatureStore(project.feature_repo)
        with pytest.raises(InvalidInput, match=r"needs entity rows with its request data"):
            store.check_consistency("basket")
        # the mean (30) is no row's own value, so every row differs
        rows = [{"customer_id": i, "basket_value": v} for i, v in ((1, 10.0), (2, 20.0), (3, 60.0))]
        report = store.check_consistency("basket", rows=rows)
        assert (report.checked, report.mismatches) == (3, {"spend_share": 3})
        assert store.check_consistency("basket", rows=rows[:1]).ok  # one row: its own mean
        assert store.check_consistency("activity", sample=5).checked == 5  # from online
        # an entity with no row online: both paths say null, and the report says so
        nobody = store.check_consistency("activity", rows=[{"customer_id": 10**9}])
        assert (nobody.ok, nobody.checked, nobody.with_values) == (True, 1, 0)
