"""The retraining template on a project shaped like the ones ``milepost init`` writes
(:mod:`tests.unit._shop_features`): a regression model gated on RMSE (lower is better),
and an on-demand feature whose request column rides in the labels dataset, trained
point-in-time and served by the model's endpoint with the request's data.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

import milepost
from milepost.errors import InvalidInput
from milepost.features import FeatureStore
from milepost.retraining import Decision, run_steps
from milepost.serving.engine import EndpointEngine
from tests.unit import _shop_features as shop

REPO = "tests.unit._shop_features"
MODEL = "spend"
ARGS: dict[str, Any] = {
    "model": MODEL,
    "labels": shop.LABELS,
    "target": "spend_next",
    "feature_repo": REPO,
}
RMSE_GATE = {
    "kind": "metric_vs_baseline",
    "name": "rmse vs Production",
    "dataset": f"{MODEL}.test",
    "target": "spend_next",
    "task": "regression",
    "primary": "rmse",
    "threshold": 8.0,  # lower is better: passes when rmse <= 8 (no Production yet)
    "min_delta": 0.0,  # then: Production's rmse minus the candidate's >= 0
}


def regressor(X: pd.DataFrame, y: pd.Series) -> Any:
    """What a regression project's ``train.fit`` returns."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(X, y)


def mean_only(X: pd.DataFrame, y: pd.Series) -> Any:
    """Predicts the mean: a much higher RMSE."""
    from sklearn.dummy import DummyRegressor

    return DummyRegressor().fit(X, y)


REGRESSOR = f"{__name__}:regressor"
MEAN_ONLY = f"{__name__}:mean_only"


@pytest.fixture
def home(tmp_path: Path) -> milepost.Runtime:
    rt = milepost.configure(home=tmp_path / "home", user="tester", metric_flush_interval=0.05)
    for name, frame in shop.sample().items():
        milepost.data.register(name, frame)
    store = FeatureStore(REPO)
    store.apply()
    store.materialize_incremental()
    return rt


def _run(**params: Any) -> dict[str, Decision]:
    return {d.step: d for d in run_steps(**ARGS, **params)}


def test_a_regression_model_is_gated_on_rmse_and_deployed(home: milepost.Runtime) -> None:
    client = milepost.Client()
    client.set_promotion_policy(
        MODEL,
        {
            "staging": [{"kind": "data_validation"}],
            "production": [RMSE_GATE],
            "deploy": {"automatic": True, "endpoint": MODEL, "steps": [50, 100]},
        },
    )
    first = _run(features=shop.FEATURES, train=REGRESSOR, staging_endpoint=f"{MODEL}-staging")
    assert first["train_model"].details["metrics"].keys() >= {"rmse", "mae", "r2"}
    assert "roc_auc" not in first["train_model"].details["metrics"]
    assert first["evaluate_model"].details["primary"] == "rmse"
    deploy = first["deploy_model"]
    assert deploy.action == "first Production version", deploy
    assert "<= threshold 8" in deploy.reasons[1]
    assert first["deploy_staging"].action == "staging endpoint created"

    # the same code on the same rows: a tie, which min_delta 0 lets through
    second = _run(train=REGRESSOR, staging_endpoint=f"{MODEL}-staging")
    comparison = second["evaluate_model"]
    assert comparison.action == "tie" and "(lower is better)" in comparison.reasons[0]
    assert second["deploy_model"].action == "canary started"
    assert second["deploy_staging"].action == "staging endpoint switched"

    # a worse model: its RMSE is higher, which the gate reads as a negative improvement
    client.rollback_endpoint(MODEL, reason="the endpoint is free for the next candidate")
    worse = _run(train=MEAN_ONLY)
    assert worse["evaluate_model"].action == "production better"
    assert worse["evaluate_model"].details["improvement"] < 0
    assert worse["promote_to_staging"].action == "in Staging"  # data gates only
    refused = worse["deploy_model"]
    assert refused.action == "not deployed"
    assert "rmse vs Production: rmse" in refused.reasons[0]
    assert "< min_delta 0" in refused.reasons[0]


def test_an_on_demand_feature_is_trained_from_the_labels_and_served_from_the_request(
    home: milepost.Runtime,
) -> None:
    decisions = _run(features=shop.FEATURES, train=REGRESSOR, staging_endpoint="spend-staging")
    assert decisions["deploy_staging"].action == "staging endpoint created"
    client = milepost.Client()
    version = client.get_model_version(MODEL, 1)
    assert "basket:v1:basket_share" in version.feature_refs
    train = milepost.data.get(f"{MODEL}.train@1").to_pandas()
    labels = milepost.data.get(shop.LABELS).to_pandas().set_index("customer_id")
    # point-in-time: each row's share is its own basket over the spend seen before it
    row = train.iloc[0]
    assert row["basket_value"] == labels.loc[row["customer_id"], "basket_value"]
    assert row["basket_share"] == pytest.approx(row["basket_value"] / (1 + row["monthly_spend"]))

    customers = milepost.data.get(shop.CUSTOMERS).to_pandas()
    recent = customers.sort_values("event_timestamp").tail(3)  # within the views' TTL
    requests = [
        {"customer_id": int(c), "basket_value": b}
        for c, b in zip(recent["customer_id"], [10.0, 55.5, 120.0], strict=True)
    ]
    rt = milepost.get_runtime()
    engine = EndpointEngine(
        "spend-staging", store=rt.serving.store, models=rt.models, features=rt.features
    )
    try:
        reply = engine.predict(orjson.dumps({"rows": requests}))
        assert reply.status == 200
        served = orjson.loads(reply.body)["predictions"]
        with pytest.raises(InvalidInput, match="needs request data 'basket_value'"):
            engine.predict(orjson.dumps({"rows": [{"customer_id": requests[0]["customer_id"]}]}))
    finally:
        engine.close()
    # the same features computed offline by the same transform give the same answers
    online = FeatureStore(REPO).get_online_features(version.feature_refs, requests).to_df()
    model = milepost.load_model(f"models:/{MODEL}/1")
    assert served == pytest.approx(list(model.predict(online)))
    assert online["basket_share"].tolist() == pytest.approx(
        [
            b / (1 + s)
            for b, s in zip(
                [r["basket_value"] for r in requests], recent["monthly_spend"], strict=True
            )
        ]
    )


def test_the_model_server_loads_the_on_demand_code_where_it_was_defined(
    home: milepost.Runtime, tmp_path: Path
) -> None:
    """A fresh process (as `milepost endpoints serve` is) has no transform loaded: it
    imports the module that defined it (recorded by apply) when that is installed, else
    the feature_repo setting's module; with neither, the refusal says what to do."""
    _run(features=shop.FEATURES, train=REGRESSOR)
    script = (
        "import milepost\n"
        "rt = milepost.get_runtime()\n"
        "refs = rt.models.get_version('spend', 1).feature_refs\n"
        "try:\n"
        "    reader = rt.features.serving_reader(refs)\n"
        "except milepost.MilepostError as exc:\n"
        "    print('refused:', exc.message, exc.hint)\n"
        "else:\n"
        "    print('keys:', reader.join_keys)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env |= {"MILEPOST_HOME": str(home.settings.home)}
    # the defining module elsewhere: a copy importable under another name only
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "shop_copy").mkdir(parents=True)
    (elsewhere / "shop_copy/__init__.py").write_text(Path(shop.__file__).read_text())

    def serve(feature_repo: str, *paths: Path) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script],
            env={
                **env,
                "MILEPOST_FEATURE_REPO": feature_repo,
                "PYTHONPATH": os.pathsep.join(str(p) for p in [root / "src", *paths]),
            },
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    # the module that defined the transform, installed here: no setting needed
    assert serve("no_such_features_module", root).strip() == "keys: ['customer_id']"
    # not installed here under that name: the setting's module provides the code
    assert serve("shop_copy", elsewhere).strip() == "keys: ['customer_id']"
    # neither
    refused = serve("no_such_features_module", elsewhere)
    assert refused.startswith("refused: basket:v1 is on-demand: serving it runs its transform")
    assert "no_such_features_module" in refused and "feature_repo" in refused
    assert "the module that defined it is not importable here" in refused


def test_labels_without_the_request_column_are_refused_clearly(home: milepost.Runtime) -> None:
    labels = milepost.data.get(shop.LABELS).to_pandas().drop(columns=["basket_value"])
    milepost.data.register(shop.LABELS, labels)
    with pytest.raises(InvalidInput, match="lack the request column 'basket_value'") as caught:
        _run(features=shop.FEATURES, train=REGRESSOR)
    assert "request data is read from the labels" in (caught.value.hint or "")
