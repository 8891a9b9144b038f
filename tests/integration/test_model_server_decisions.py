"""Decision records through the real model server: `milepost serve` on 127.0.0.1 answers a
consequential endpoint's requests, and each decision reads back from the log."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import milepost
from milepost.errors import NotFound
from milepost.serving.decisions import DecisionRecord
from tests._wait import wait_until
from tests.conftest import optional_import
from tests.contract.conftest import FEATURES
from tests.integration.conftest import Endpoint

pytestmark = pytest.mark.slow


def _digests(value: Any) -> list[str]:
    """Every blob digest in a nested record (the ONNX twin's files)."""
    if isinstance(value, dict):
        return [d for v in value.values() for d in _digests(v)]
    if isinstance(value, str) and re.fullmatch("[0-9a-f]{64}", value):
        return [value]
    return []


def test_a_served_decision_reads_back_with_its_explanation_without_the_model(
    make_endpoint: Callable[..., Endpoint],
) -> None:
    optional_import("shap", extra="explain")
    endpoint = make_endpoint()
    rt = milepost.get_runtime()
    rt.serving.set_consequential("churn-ep", True, reason="retention offers")
    server = endpoint.start()
    rows = endpoint.rows[:2]
    answer = server.predict(rows)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["decision_record"] is True
    # the replica has answered; the decision is read from the log alone
    mv = rt.models.get_version("churn", 1)
    digests = [*mv.files.values(), *_digests(mv.onnx or {})]
    for digest in digests:
        Path(rt.blobs.location(digest)).unlink()
    assert digests and not rt.blobs.exists(digests[0])

    record = wait_until(  # the replica writes its log segment within a second
        lambda: rt.serving.decision(body["request_id"], row=1),
        what="the decision in the prediction log",
        timeout=60,
        ignore=(NotFound,),
    )
    assert isinstance(record, DecisionRecord)
    assert (record.endpoint, record.uri, record.rows) == ("churn-ep", "models:/churn/1", 2)
    assert record.prediction == body["predictions"][1]
    assert record.probabilities is not None
    assert record.probabilities["p"] == pytest.approx(body["probabilities"][1])
    assert {k: record.features[k] for k in FEATURES} == rows[1]
    e = record.explanation
    assert e is not None and e["features"] == len(FEATURES)
    assert set(e["contributions"]) <= set(FEATURES)
    total = e["base_value"] + sum(e["contributions"].values()) + e["other"]
    assert total == pytest.approx(e["output"], abs=1e-6)
    assert e["output_space"] == "log-odds" and e["explained_class"] == 1
    p1 = body["probabilities"][1][1]
    assert e["output"] == pytest.approx(math.log(p1 / (1 - p1)), abs=1e-4)
    assert [d.request_id for d in rt.serving.decisions("churn-ep")] == [body["request_id"]] * 2
