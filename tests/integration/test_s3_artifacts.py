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
