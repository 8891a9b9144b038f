"""Lineage through ``milepost.Client``, embedded and remote: the graph around a model
version, a dataset's models, and refusals, the same both ways."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import milepost
from milepost.errors import InvalidInput, NotFound
from tests.contract.conftest import FEATURES

MODEL = "ops-lineage"


@pytest.fixture(scope="module")
def trained(
    platform: dict[str, Any], churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> str:
    """A dataset version, a run that trained on it and the model version it logged,
    served by an endpoint; returns the dataset version's ref."""
    rt = platform["rt"]
    version = rt.data.register("ops-customers", churn_frame.head(200))
    run = rt.tracking.start_run(experiment="ops-lineage")
    rt.data.log_input(run.run_id, version.ref)
    rt.models.log_model(
        run.run_id, churn_models["good"], name=MODEL, input_example=churn_frame[FEATURES].head(3)
    )
    rt.tracking.end_run(run.run_id)
    rt.serving.create("ops-lineage-ep", MODEL, version=1)
    return str(version.ref)


def test_graph_is_the_same_both_ways(
    client: milepost.Client, platform: dict[str, Any], trained: str
) -> None:
    rt = platform["rt"]
    for ref, direction, depth in (
        (f"models:/{MODEL}/1", "both", None),
        (f"models:/{MODEL}/1", "upstream", 1),
        (f"datasets:/{trained}", "downstream", None),
        ("endpoints:/ops-lineage-ep", "upstream", 2),
    ):
        got = client.lineage(ref, direction=direction, depth=depth)  # type: ignore[arg-type]
        want = rt.lineage.graph(ref, direction=direction, depth=depth)
        assert got == want and got.to_dict() == want.to_dict()
    graph = client.lineage(f"models:/{MODEL}/1")
    assert f"dataset_version:{trained}" in [n.key for n in graph.upstream()]
    assert "endpoint:ops-lineage-ep" in [n.key for n in graph.downstream()]


def test_models_trained_on(client: milepost.Client, trained: str) -> None:
    found = client.list_models_trained_on(trained)
    assert [n.key for n in found] == [f"model_version:{MODEL}/1"]
    assert client.list_models_trained_on(trained, stage="Production") == []


def test_refusals(client: milepost.Client) -> None:
    with pytest.raises(NotFound):
        client.lineage(f"models:/{MODEL}/99")
    with pytest.raises(InvalidInput, match="direction"):
        client.lineage(f"models:/{MODEL}/1", direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        client.lineage(f"models:/{MODEL}/1", depth=-1)
