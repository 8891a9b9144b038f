"""Retention with an S3 artifact store (moto on 127.0.0.1): a pruned segment's blob goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import milepost
from milepost import Client
from milepost.serving.logger import PredictionLogger, new_request_id
from tests.unit.serving.test_retention import DAY, NOW

pytestmark = pytest.mark.s3


def test_prune_deletes_the_blobs_of_segments_in_an_s3_artifact_store(
    s3_server: dict[str, Any], tmp_path: Path
) -> None:
    """Replicas write segments as blobs of the artifact store: a prune deletes the blob."""
    rt = milepost.configure(
        home=tmp_path / "home",
        artifact_uri=f"s3://{s3_server['bucket']}/retention-{tmp_path.name}",
        s3_endpoint_url=s3_server["endpoint_url"],
        user="tester",
        prediction_log_retention_days=30,
    )
    for at in (NOW - 40 * DAY, NOW - DAY):
        logger = PredictionLogger(
            "plain",
            rt.settings.home / "predictions",
            rt.serving.store,
            blobs=rt.blobs,
            interval=3600,
        )
        request_id = new_request_id(at)
        logger.append(
            {"request_id": request_id, "row": 0, "ts": at, "endpoint": "plain",
             "variant": "plain-v1", "model": "plain", "version": 1, "role": "primary",
             "key": request_id, "features": "{}", "prediction": "1", "status": "ok"}
        )  # fmt: skip
        logger.close()
    old, new = rt.serving.store.segments("plain")
    assert old.startswith("s3://") and new.startswith("s3://")
    # a blob's location ends .../sha256/ab/cdef...: its digest is "abcdef..."
    old_digest, new_digest = ("".join(p.rsplit("/", 2)[1:]) for p in (old, new))
    assert rt.blobs.exists(old_digest)

    report = rt.serving.prune_prediction_logs(now=NOW)
    assert report.segments == 1 and report.rows == 1
    assert not rt.blobs.exists(old_digest) and rt.blobs.exists(new_digest)
    assert rt.serving.store.segments("plain") == [new]
    assert Client().verify_audit().ok
