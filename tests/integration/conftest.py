"""An endpoint with two registered versions, and `milepost serve` processes started on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost import Client
from tests.contract.conftest import FEATURES
from tests.integration.test_model_server import Server


@dataclass
class Endpoint:
    """``churn-ep`` serving churn v1 (v2 registered beside it); ``start`` runs a server."""

    home: Path
    rows: list[dict[str, Any]]
    settings: dict[str, Any]
    servers: list[Server] = field(default_factory=list)

    def start(self, replicas: int = 1, **settings: Any) -> Server:
        """`milepost serve churn-ep` with these settings (on top of the endpoint's)."""
        milepost.configure(home=self.home, **self.settings, **settings)
        self.servers.append(Server(self.home, "churn-ep", replicas))
        return self.servers[-1]


@pytest.fixture
def make_endpoint(
    tmp_path: Path, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> Iterator[Callable[..., Endpoint]]:
    made: list[Endpoint] = []

    def make(**settings: Any) -> Endpoint:
        home = tmp_path / "home"
        rt = milepost.configure(home=home, **settings)
        for key in ("good", "weak"):
            with milepost.start_run(experiment="serving"):
                milepost.log_model(
                    churn_models[key],
                    "churn",
                    input_example=churn_frame[FEATURES].head(3),
                    onnx=True,
                )
        Client().promote("churn", 1, "Production")
        rt.serving.create("churn-ep", "churn", version=1)  # pinned: routing only
        made.append(Endpoint(home, churn_frame[FEATURES].to_dict("records"), settings))
        return made[-1]

    yield make
    for endpoint in made:
        for server in endpoint.servers:
            server.stop()
    milepost.reset()
