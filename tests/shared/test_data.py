"""Datasets through the runtime's data service, embedded and remote: registering (an
upload remotely), versions, profiles, diffs, validations, the runs that used a version."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from milepost.data import DatasetVersion
from milepost.errors import InvalidInput, NotFound, PayloadTooLarge, ValidationFailed
from tests.shared._registry import FRAME

SUITE = {"name": "basic", "checks": [{"kind": "not_null", "column": "age"}]}
FAILING = {"name": "strict", "checks": [{"kind": "between", "column": "age", "max": 30}]}


def _same(a: DatasetVersion, b: DatasetVersion) -> None:
    assert a.to_dict() == b.to_dict()


def test_register_get_versions_and_load(
    runtime: Any, platform: dict[str, Any], unique: str, tmp_path: Path
) -> None:
    rt = platform["rt"]
    v1 = runtime.data.register(unique, FRAME, description="first")
    assert (v1.ref, v1.num_rows, v1.columns) == (f"{unique}@1", 8, ["age", "spend", "churned"])
    _same(v1, rt.data.get(f"{unique}@1"))
    # the same content is the same version, from a DataFrame or its CSV file
    csv = tmp_path / "frame.csv"
    FRAME.to_csv(csv, index=False)
    assert runtime.data.register(unique, csv).version == 1
    v2 = runtime.data.register(unique, FRAME.assign(age=FRAME["age"] + 1))
    assert v2.version == 2
    assert [v.version for v in runtime.data.versions(unique)] == [1, 2]
    _same(runtime.data.get(unique), rt.data.get(f"{unique}@latest"))
    assert runtime.data.get(f"{unique}@1").profile == rt.data.get(f"{unique}@1").profile
    pd.testing.assert_frame_equal(runtime.data.get(f"{unique}@1").to_pandas(), FRAME)
    rows = {r.name: r for r in runtime.data.list_datasets()}
    assert rows[unique].to_dict() == {r.name: r for r in rt.data.list_datasets()}[unique].to_dict()


def test_diff(runtime: Any, platform: dict[str, Any], unique: str) -> None:
    rt = platform["rt"]
    rt.data.register(unique, FRAME)
    rt.data.register(unique, FRAME.assign(extra=1.5).drop(columns=["spend"]))
    d = runtime.data.diff(f"{unique}@1", f"{unique}@2")
    assert d.to_dict() == rt.data.diff(f"{unique}@1", f"{unique}@2").to_dict()
    assert [c.name for c in d.added] == ["extra"] and [c.name for c in d.removed] == ["spend"]
    assert d.rows == (8, 8) and not d.same_content


def test_validate_and_results(runtime: Any, platform: dict[str, Any], unique: str) -> None:
    rt = platform["rt"]
    v = rt.data.register(unique, FRAME)
    result = runtime.data.validate(v.ref, SUITE)
    assert result.success and result.dataset_ref == v.ref and result.created_by == "alice"
    assert runtime.data.get_validation(result.result_id).to_dict() == result.to_dict()
    with pytest.raises(ValidationFailed, match="failed 1 of 1 checks") as info:
        runtime.data.validate(v, FAILING, strict=True)
    assert info.value.result is not None and not info.value.result.success
    stored = runtime.data.validations(v.ref)
    assert [r.to_dict() for r in stored] == [r.to_dict() for r in rt.data.validations(v.ref)]
    assert [r.suite_name for r in stored] == ["strict", "basic"]


def test_runs_using(runtime: Any, platform: dict[str, Any], unique: str) -> None:
    rt = platform["rt"]
    v = rt.data.register(unique, FRAME)
    run = rt.tracking.start_run(experiment=unique)
    used = runtime.data.log_input(run.run_id, v.ref, role="eval")
    assert (used.ref, used.role, used.content_hash) == (v.ref, "eval", v.content_hash)
    assert [u.to_dict() for u in runtime.data.runs_using(v.ref)] == [
        u.to_dict() for u in rt.data.runs_using(v.ref)
    ]
    assert [u.ref for u in runtime.data.inputs_of_run(run.run_id)] == [v.ref]


def test_errors_are_the_same(runtime: Any, unique: str) -> None:
    with pytest.raises(NotFound):
        runtime.data.get(f"{unique}@1")
    with pytest.raises(InvalidInput):
        runtime.data.get(f"{unique}@zero")
    with pytest.raises(InvalidInput):
        runtime.data.register("bad/name", FRAME)
    with pytest.raises(InvalidInput):
        runtime.data.register(unique, FRAME.iloc[0:0])
    with pytest.raises(InvalidInput, match="Invalid suite"):
        runtime.data.validate(f"{unique}@1", {"name": "x", "checks": [{"kind": "nope"}]})


def test_upload_limits_and_garbage(platform: dict[str, Any], unique: str) -> None:
    """The upload route refuses what is not Parquet, and bodies past the limit (413)."""
    headers = {"Authorization": f"Bearer {platform['token']}"}
    url = f"{platform['url']}/api/v1/datasets/{unique}/versions"
    answer = httpx.post(url, content=b"not parquet", headers=headers)
    assert answer.status_code == 400 and "Parquet" in answer.json()["message"]
    # a declared length past the limit is refused before any byte is read
    parts = httpx.URL(url)
    conn = http.client.HTTPConnection(parts.host, parts.port, timeout=10)
    try:
        conn.putrequest("POST", parts.raw_path.decode())
        conn.putheader("Authorization", headers["Authorization"])
        conn.putheader("Content-Length", str(1 << 41))
        conn.endheaders()
        big = conn.getresponse()
        assert big.status == 413
        assert json.loads(big.read())["code"] == PayloadTooLarge.code
    finally:
        conn.close()
    with pytest.raises(NotFound):
        platform["rt"].data.get(unique)
