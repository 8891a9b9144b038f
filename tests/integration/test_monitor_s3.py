"""A scheduled monitor on a third host reads two replicas' prediction logs from S3.

The hosts are part C's (``test_prediction_log_s3.py``): two replicas write their log
segments to an S3 artifact store (moto on 127.0.0.1) and register them in one shared
metadata database; the monitor runs on a third host, on its schedule (an injected clock),
and sees every row of both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import milepost
from milepost.monitoring.service import MonitorService
from milepost.serving.logger import new_request_id
from milepost.serving.monitor_sources import ServingMonitorSources
from tests.contract.conftest import FEATURES
from tests.integration.test_prediction_log_s3 import EP, Host, _reader

pytestmark = pytest.mark.s3


@pytest.fixture
def shared(s3_server: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """One metadata database and one S3 prefix for every host of the test."""
    return {
        "meta_uri": f"sqlite:///{(tmp_path / 'shared-meta.db').as_posix()}",
        "art_uri": f"s3://{s3_server['bucket']}/monitor-{tmp_path.name}",
        "s3": s3_server["endpoint_url"],
    }


T0 = 1_800_000_000.0  # epoch seconds of the slot the monitor runs at
HOUR_MS = 3_600_000


def _log(host: Host, variant: str, start_ms: int, n: int, *, shift: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    logger = host.logger()
    for k in range(n):
        features = {"age": round(float(rng.normal(40 + shift, 8)), 1), "plan": "basic"}
        logger.append(
            {
                "request_id": new_request_id(start_ms + k),
                "row": 0,
                "ts": start_ms + k,
                "endpoint": EP,
                "variant": variant,
                "model": "churn",
                "version": 1,
                "role": "primary",
                "key": None,
                "features": json.dumps(features),
                "prediction": "0",
                "latency_ms": 1.0,
                "status": "ok",
                "error": None,
            }
        )
    logger.close()


def test_a_scheduled_monitor_reads_both_replicas_from_s3(
    tmp_path: Path,
    shared: dict[str, str],
    churn_models: dict[str, Any],
    churn_frame: pd.DataFrame,
) -> None:
    a = Host(tmp_path, "host-a", shared["meta_uri"], shared["art_uri"], shared["s3"])
    b = Host(tmp_path, "host-b", shared["meta_uri"], shared["art_uri"], shared["s3"])
    now = int(T0 * 1000)
    # the previous hour: both replicas normal; the last hour: replica b's traffic is older
    for host, variant, seed in ((a, "replica-a", 1), (b, "replica-b", 2)):
        _log(host, variant, now - HOUR_MS - 1_800_000, 400, shift=0.0, seed=seed)
    _log(a, "replica-a", now - 1_800_000, 400, shift=0.0, seed=3)
    _log(b, "replica-b", now - 1_800_000, 400, shift=20.0, seed=4)

    rt = _reader(tmp_path, shared)
    try:
        with milepost.start_run(experiment="monitoring"):
            milepost.log_model(
                churn_models["good"], "churn", input_example=churn_frame[FEATURES].head(3)
            )
        rt.serving.create(EP, "churn", version=1)
        clock = {"now": T0 - 30}
        monitors = MonitorService(
            rt.db,
            "host-c",
            ServingMonitorSources(rt.serving, rt.models),
            clock=lambda: clock["now"],
        )
        monitors.create("s3-drift", endpoint=EP, window="1h", schedule="every 1m")
        assert monitors.run_due() == []
        clock["now"] = T0
        [run] = monitors.run_due()
        assert run.rows == 800  # both replicas' rows of the last hour
        age = {(r.metric, r.feature): r for r in run.results}[("wasserstein", "age")]
        assert age.breached and age.details["reference_rows"] == 800
        assert [a.feature for a in run.alerts] == ["age"]
        assert monitors.run_due() == []  # the slot ran once
        for host in (a, b):  # nothing of the log stayed on the writers' disks
            assert not list(host.home.rglob("*.parquet"))
    finally:
        milepost.reset()
        a.close()
        b.close()
