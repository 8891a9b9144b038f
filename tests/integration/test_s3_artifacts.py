"""Tracking with artifacts in an S3-compatible store (moto on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import milepost
from milepost import Client
from milepost.stores.blobs_s3 import S3BlobStore


@pytest.mark.s3
def test_artifacts_go_to_s3_and_come_back(s3_server: dict[str, Any], tmp_path: Path) -> None:
    rt = milepost.configure(
        home=tmp_path / "home",
        artifact_uri=f"s3://{s3_server['bucket']}/runs-{tmp_path.name}",
        s3_endpoint_url=s3_server["endpoint_url"],
    )
    assert isinstance(rt.blobs, S3BlobStore)
    src = tmp_path / "model.bin"
    src.write_bytes(b"\x01" * 10_000)
    with milepost.start_run(experiment="s3") as run:
        info = milepost.log_artifact(src, "model")
        milepost.log_dict({"k": "v"}, "meta.json")
    assert rt.blobs.location(info.digest).startswith(f"s3://{s3_server['bucket']}/runs-")
    c = Client()
    assert c.load_dict(run.run_id, "meta.json") == {"k": "v"}
    out = c.download_artifacts(run.run_id, "model", tmp_path / "dl")
    assert (out / "model.bin").read_bytes() == src.read_bytes()


@pytest.mark.s3
def test_unreachable_s3_is_a_clear_error(tmp_path: Path, s3_server: dict[str, Any]) -> None:
    from milepost.errors import BackendUnavailable

    store = S3BlobStore("s3://milepost/x", endpoint_url="http://127.0.0.1:9")
    store.fs.retries = 1
    with pytest.raises(BackendUnavailable, match="object store"):
        store.put_bytes(b"data")


@pytest.mark.s3
def test_datasets_from_and_on_s3(s3_server: dict[str, Any], tmp_path: Path) -> None:
    import boto3
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rt = milepost.configure(
        home=tmp_path / "home",
        artifact_uri=f"s3://{s3_server['bucket']}/data-{tmp_path.name}",
        s3_endpoint_url=s3_server["endpoint_url"],
    )
    frame = pd.DataFrame({"id": range(300), "x": [i / 7 for i in range(300)]})
    s3 = boto3.client("s3", endpoint_url=s3_server["endpoint_url"])
    for k, part in enumerate((frame.iloc[:100], frame.iloc[100:])):
        local = tmp_path / f"p{k}.parquet"
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), local)
        s3.upload_file(str(local), s3_server["bucket"], f"in-{tmp_path.name}/p{k}.parquet")
    v = milepost.data.register("remote", f"s3://{s3_server['bucket']}/in-{tmp_path.name}/")
    assert (v.num_rows, v.num_files) == (300, 2)
    assert rt.blobs.location(v.files[0]).startswith("s3://")
    local = milepost.data.register("remote", frame)
    assert local.version == 1  # the same content, wherever it came from
    pd.testing.assert_frame_equal(v.to_pandas().reset_index(drop=True), frame)
    result = milepost.data.validate(
        v, {"name": "s", "checks": [{"kind": "unique", "columns": ["id"]}]}
    )
    assert result.success
