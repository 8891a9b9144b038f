"""An endpoint with two registered versions, and `milepost serve` processes started on it.

The registry (two churn models with their ONNX twins, the endpoint) is built once per
session in a template home; each test serves from its own copy of it, so a test that
changes routing, writes feedback or damages a model file changes only its copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost import Client
from tests.conftest import optional_import
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


def _register(
    home: Path, churn_models: dict[str, Any], churn_frame: pd.DataFrame, **settings: Any
) -> None:
    """churn v1 (good, Production) and v2 (weak), and ``churn-ep`` pinned to v1."""
    optional_import("skl2onnx", extra="onnx")
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
    milepost.reset()  # closes the database: the home can be copied


@pytest.fixture(scope="session")
def endpoint_template(
    tmp_path_factory: pytest.TempPathFactory,
    churn_models: dict[str, Any],
    churn_frame: pd.DataFrame,
) -> Path:
    """A home with the endpoint registered on SQLite; never served from, only copied."""
    home = tmp_path_factory.mktemp("endpoint-template") / "home"
    _register(home, churn_models, churn_frame)
    return home


@pytest.fixture
def make_endpoint(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    churn_models: dict[str, Any],
    churn_frame: pd.DataFrame,
) -> Iterator[Callable[..., Endpoint]]:
    made: list[Endpoint] = []

    def make(**settings: Any) -> Endpoint:
        home = tmp_path / "home"
        if "metadata_uri" in settings:  # another database: register there
            _register(home, churn_models, churn_frame, **settings)
        else:  # a copy of the session's registry, this test's own
            shutil.copytree(request.getfixturevalue("endpoint_template"), home)
        milepost.configure(home=home, **settings)
        made.append(Endpoint(home, churn_frame[FEATURES].to_dict("records"), settings))
        return made[-1]

    yield make
    for endpoint in made:
        for server in endpoint.servers:
            server.stop()
    milepost.reset()
