"""Integrity on read with the artifact store on S3 (moto on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost.errors import IntegrityViolation


@pytest.mark.s3
def test_a_damaged_object_or_cached_copy_on_s3(s3_server: dict[str, Any], tmp_path: Path) -> None:
    rt = milepost.configure(
        home=tmp_path / "home",
        artifact_uri=f"s3://{s3_server['bucket']}/integrity-{tmp_path.name}",
        s3_endpoint_url=s3_server["endpoint_url"],
    )
    frame = pd.DataFrame({"id": range(400), "x": [i / 3 for i in range(400)]})
    version = milepost.data.register("remote", frame)
    pd.testing.assert_frame_equal(version.to_pandas(), frame)  # downloaded into the cache
    (cached,) = rt.data.local_files(version)
    # a damaged cached copy is fetched again from the store, which is intact
    cached.write_bytes(cached.read_bytes()[:100])
    pd.testing.assert_frame_equal(milepost.data.get("remote@1").to_pandas(), frame)
    # a damaged object in the bucket is refused, and leaves no cached copy behind
    location = rt.blobs.location(version.files[0])
    rt.blobs.fs.pipe_file(location, rt.blobs.fs.cat_file(location)[:-20])  # type: ignore[attr-defined]
    cached.unlink()
    with pytest.raises(IntegrityViolation, match="does not match its SHA-256"):
        milepost.data.get("remote@1").to_pandas()
    assert not cached.exists() and list(cached.parent.iterdir()) == []
    milepost.reset()
