"""Integrity on read: a stored blob that was altered, truncated or swapped for another valid
file is an IntegrityViolation on every read path, never a parser error or wrong data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost import Client, Runtime
from milepost.errors import IntegrityViolation
from milepost.features import DatasetSource, Entity, FeatureStore, FeatureView, Field
from tests.contract.conftest import FEATURES

NOW = datetime.now(UTC).replace(microsecond=0)


def _frame(n: int, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": range(1, n + 1),
            "ts": [NOW - timedelta(hours=i % 24) for i in range(n)],
            "spend": [float(i + offset) for i in range(n)],
        }
    )


def _tamper(path: Path, how: str, other: Path) -> None:
    path.chmod(0o644)
    data = path.read_bytes()
    if how == "a flipped byte":
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(flipped))
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:  # another valid Parquet file of the same schema
        path.write_bytes(other.read_bytes())


HOW = ["a flipped byte", "truncated", "another valid file"]


@pytest.fixture
def datasets(runtime: Runtime) -> dict[str, Any]:
    good = milepost.data.register("customers", _frame(500))
    other = milepost.data.register("customers", _frame(500, offset=1000))
    assert good.to_pandas()["spend"].sum() > 0  # read once: a later check must not be skipped
    return {
        "version": good,
        "path": Path(runtime.blobs.location(good.files[0])),
        "other": Path(runtime.blobs.location(other.files[0])),
    }


def _training_set(ref: str) -> pd.DataFrame:
    customer = Entity("customer", join_keys=["customer_id"])
    view = FeatureView(
        name="spending",
        entity=customer,
        source=DatasetSource(ref),
        timestamp_field="ts",
        ttl=timedelta(days=2),
        schema=[Field("spend")],
    )
    store = FeatureStore([customer, view])
    store.apply()
    labels = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": [NOW, NOW]})
    return store.get_historical_features(labels, ["spending:spend"])


READS: dict[str, Callable[[str], Any]] = {
    "data.get(...).to_pandas()": lambda ref: milepost.data.get(ref).to_pandas(),
    "data.get(...).to_arrow()": lambda ref: milepost.data.get(ref).to_arrow(),
    "validate": lambda ref: milepost.data.validate(
        milepost.data.get(ref), {"name": "s", "checks": [{"kind": "not_null", "column": "spend"}]}
    ),
    "training set (point-in-time)": _training_set,
}


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("read", list(READS))
def test_a_damaged_snapshot_is_refused_on_every_read(
    datasets: dict[str, Any], read: str, how: str
) -> None:
    _tamper(datasets["path"], how, datasets["other"])
    with pytest.raises(IntegrityViolation, match="does not match its SHA-256"):
        READS[read]("customers@1")
    assert len(milepost.data.get("customers@2").to_pandas()) == 500  # the others still read


@pytest.mark.parametrize("how", HOW)
def test_a_damaged_model_file_is_refused(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame, how: str
) -> None:
    with milepost.start_run():
        mv = milepost.log_model(
            churn_models["good"], "churn", input_example=churn_frame[FEATURES].head(3)
        )
        other = milepost.log_model(
            churn_models["weak"], "churn", input_example=churn_frame[FEATURES].head(3)
        )
    path = Path(runtime.blobs.location(mv.files["model.skops"]))
    _tamper(path, how, Path(runtime.blobs.location(other.files["model.skops"])))
    with pytest.raises(IntegrityViolation, match=r"models:/churn/1: model\.skops does not match"):
        milepost.load_model(mv.uri)


@pytest.mark.parametrize("how", HOW)
def test_a_damaged_artifact_is_refused_and_leaves_no_download(
    runtime: Runtime, tmp_path: Path, how: str
) -> None:
    with milepost.start_run() as run:
        info = milepost.log_dict({"threshold": 0.5, "pad": "x" * 5000}, "config/params.json")
        other = milepost.log_dict({"threshold": 0.9, "pad": "y" * 5000}, "config/other.json")
    _tamper(
        Path(runtime.blobs.location(info.digest)), how, Path(runtime.blobs.location(other.digest))
    )
    c = Client()
    with pytest.raises(IntegrityViolation, match="does not match its SHA-256"):
        c.load_dict(run.run_id, "config/params.json")
    dest = tmp_path / "out"
    with pytest.raises(IntegrityViolation, match="does not match its SHA-256"):
        c.download_artifacts(run.run_id, "config", dest)
    assert not (dest / "config" / "params.json").exists()
    assert [p.name for p in (dest / "config").iterdir()] in ([], ["other.json"])
