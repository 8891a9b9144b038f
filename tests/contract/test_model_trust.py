"""Trust in a model file is the loader's decision, on every metadata backend.

The author's ``trusted_types`` let a model be saved and are shown with the version;
every load (``load_model``, evaluation and the metric gate, the model server) trusts
only the built-in allow-list plus the loading side's argument, the
``MILEPOST_TRUSTED_TYPES`` setting and the approver-set list.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import SelectKBest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import milepost
from milepost import Client, Runtime
from milepost.demo.data import LABEL
from milepost.demo.training import preprocess
from milepost.errors import (
    AlreadyExists,
    ConfigError,
    GateFailed,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from milepost.serving.engine import EndpointEngine
from tests.conftest import optional_import
from tests.contract.conftest import FEATURES

SHELL = "subprocess.run"
SCORE = f"{__name__}.spread"


def spread(X: Any, y: Any) -> Any:
    """A feature score of our own: a function no loader trusts unless told to."""
    return np.asarray(X).std(axis=0), np.ones(np.asarray(X).shape[1])


def _shell_model() -> Pipeline:
    return Pipeline([("run", FunctionTransformer(subprocess.run)), ("model", LogisticRegression())])


def _scored(churn_frame: pd.DataFrame) -> Pipeline:
    train = churn_frame.iloc[:2000]
    model = Pipeline(
        [
            ("prep", preprocess(True)),
            ("select", SelectKBest(spread, k=6)),
            ("model", LogisticRegression(max_iter=500)),
        ]
    )
    return model.fit(train[FEATURES], train[LABEL])


def _runtime_with(runtime: Runtime, **overrides: Any) -> Runtime:
    s = runtime.settings
    settings: dict[str, Any] = {
        "home": s.home,
        "metadata_uri": s.metadata_uri,
        "user": s.user,
        "metric_flush_interval": 0.05,
    }
    return milepost.configure(**(settings | overrides))


def test_the_authors_list_is_information_not_trust(runtime: Runtime) -> None:
    with milepost.start_run():
        mv = milepost.log_model(_shell_model(), "shell", flavor="sklearn", trusted_types=[SHELL])
    assert mv.trusted_types == [SHELL]  # shown with the version
    for prefer_onnx in (False, True):
        with pytest.raises(
            PermissionDenied, match=r"type 'subprocess.run', which this process"
        ) as info:
            milepost.load_model(mv.uri, prefer_onnx=prefer_onnx)
    message = str(info.value)
    assert "models:/shell/1" in message and "declared 'subprocess.run'" in message
    assert "trusted_types=['subprocess.run']" in message
    assert "MILEPOST_TRUSTED_TYPES=subprocess.run" in message
    assert "milepost models trust add subprocess.run" in message
    assert info.value.details == {"untrusted_types": [SHELL]}
    # the loading side decides: by argument ...
    loaded = milepost.load_model(mv.uri, trusted_types=[SHELL])
    assert loaded.native.named_steps["run"].func is subprocess.run
    # ... or by setting, for every load in this process
    _runtime_with(runtime, trusted_types=SHELL)
    assert milepost.load_model(mv.uri).native.named_steps["run"].func is subprocess.run
    with pytest.raises(InvalidInput, match="must be a list of type names"):
        milepost.load_model(mv.uri, trusted_types=SHELL)  # type: ignore[arg-type]


def test_a_bad_setting_is_a_config_error(runtime: Runtime) -> None:
    with milepost.start_run():
        mv = milepost.log_model(_shell_model(), "shell", flavor="sklearn", trusted_types=[SHELL])
    _runtime_with(runtime, trusted_types="subprocess.run, not a type")
    with pytest.raises(ConfigError, match="'not a type' is not a type name"):
        milepost.load_model(mv.uri)


def test_the_approver_set_list(runtime: Runtime) -> None:
    with milepost.start_run():
        mv = milepost.log_model(_shell_model(), "shell", flavor="sklearn", trusted_types=[SHELL])
    models = runtime.models
    with pytest.raises(PermissionDenied, match="needs the approver or admin role"):
        models.add_trusted_type(SHELL, reason="the ops team's tool")
    assert models.list_trusted_types() == []
    runtime.roles.grant("tester", "approver")
    record = models.add_trusted_type(SHELL, reason="the ops team's tool")
    assert (record.type_name, record.added_by, record.reason) == (
        SHELL,
        "tester",
        "the ops team's tool",
    )
    assert models.list_trusted_types() == [record]
    event = Client().list_audit_events(object_type="trusted_type")[0]
    assert (event.action, event.object_id, event.actor) == ("trusted_type.add", SHELL, "tester")
    assert event.reason == "the ops team's tool" and event.after["added_by"] == "tester"
    assert milepost.load_model(mv.uri).native.named_steps["run"].func is subprocess.run
    with pytest.raises(AlreadyExists, match="trusted already"):
        models.add_trusted_type(SHELL, reason="again")
    with pytest.raises(InvalidInput, match="not a type name"):
        models.add_trusted_type("subprocess run", reason="x")
    with pytest.raises(InvalidInput, match="Say why"):
        models.add_trusted_type("os.system", reason=" ")
    models.remove_trusted_type(SHELL, reason="no longer needed")
    event = Client().list_audit_events(object_type="trusted_type")[0]
    assert (event.action, event.before["reason"]) == ("trusted_type.remove", "the ops team's tool")
    with pytest.raises(PermissionDenied, match=r"subprocess\.run"):
        milepost.load_model(mv.uri)
    with pytest.raises(NotFound, match="not on the trusted list"):
        models.remove_trusted_type(SHELL)
    # a failed change leaves no trace: no row, no audit event
    runtime.roles.grant("tester", "admin")
    runtime.roles.revoke("tester", "approver")
    _runtime_with(runtime, user="mallory")
    with pytest.raises(PermissionDenied, match="'mallory' may not trust"):
        milepost.get_runtime().models.add_trusted_type(SHELL, reason="trust me")
    assert milepost.get_runtime().models.list_trusted_types() == []
    assert Client().list_audit_events(object_type="trusted_type")[0].action == "trusted_type.remove"


def test_a_row_written_to_the_database_directly_trusts_nothing(runtime: Runtime) -> None:
    import sqlalchemy as sa

    from milepost.stores.schema import trusted_types

    with milepost.start_run():
        mv = milepost.log_model(_shell_model(), "shell", flavor="sklearn", trusted_types=[SHELL])
    with runtime.db.write() as conn:
        conn.execute(
            sa.insert(trusted_types).values(
                type_name=SHELL, added_by="mallory", added_at=0, reason="trust me"
            )
        )
    assert [(t.type_name, t.audited) for t in runtime.models.list_trusted_types()] == [
        (SHELL, False)
    ]
    with pytest.raises(PermissionDenied, match=r"subprocess\.run"):
        milepost.load_model(mv.uri)
    runtime.roles.grant("tester", "approver")
    runtime.models.remove_trusted_type(SHELL, reason="forged")
    runtime.models.add_trusted_type(SHELL, reason="reviewed")
    assert milepost.load_model(mv.uri).version.version == 1
    with runtime.db.write() as conn:  # an audited row edited afterwards is ignored too
        conn.execute(sa.update(trusted_types).values(reason="something else"))
    with pytest.raises(PermissionDenied, match=r"subprocess\.run"):
        milepost.load_model(mv.uri)


def test_the_metric_gate_records_an_untrusted_model_as_an_error(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    milepost.data.register("churn.test", churn_frame.iloc[2000:])
    with milepost.start_run():
        milepost.log_model(
            churn_models["good"], "churn", input_example=churn_frame[FEATURES].head(5)
        )
    with milepost.start_run():
        mv = milepost.log_model(
            _scored(churn_frame),
            "churn",
            input_example=churn_frame[FEATURES].head(5),
            trusted_types=[SCORE],
        )
    c = Client()
    c.set_promotion_policy(
        "churn",
        {
            "production": [
                {
                    "kind": "metric_vs_baseline",
                    "dataset": "churn.test@1",
                    "target": LABEL,
                    "primary": "roc_auc",
                    "threshold": 0.5,
                }
            ]
        },
    )
    with pytest.raises(GateFailed) as info:
        c.promote("churn", mv.version, "Production")
    (gate,) = info.value.details["gates"]
    assert gate["status"] == "error"
    assert f"type '{SCORE}', which this process does not trust" in gate["message"]
    assert c.get_model_version("churn", mv.version).stage == "None"
    # an approver trusts it for every loader: the gate then scores it
    runtime.roles.grant("tester", "approver")
    runtime.models.add_trusted_type(SCORE, reason="our feature score")
    assert c.promote("churn", mv.version, "Production").status == "completed"


def test_the_model_server_refuses_an_untrusted_variant(
    runtime: Runtime, churn_frame: pd.DataFrame
) -> None:
    with milepost.start_run():
        mv = milepost.log_model(
            _scored(churn_frame),
            "churn",
            input_example=churn_frame[FEATURES].head(5),
            onnx=True,
            trusted_types=[SCORE],
        )
    assert mv.has_onnx  # served through ONNX: the native object would load only lazily
    with pytest.raises(PermissionDenied, match=f"type '{SCORE}'"):
        runtime.serving.create("ep", "churn", version=1)
    runtime.roles.grant("tester", "approver")
    runtime.models.add_trusted_type(SCORE, reason="our feature score")
    runtime.serving.create("ep", "churn", version=1)
    runtime.models.remove_trusted_type(SCORE, reason="withdrawn")
    with pytest.raises(PermissionDenied, match=f"type '{SCORE}'"):
        EndpointEngine(
            "ep", store=runtime.serving.store, models=runtime.models, features=runtime.features
        )


def test_an_onnx_served_version_is_decided_without_importing_sklearn(
    runtime: Runtime, churn_models: dict[str, Any], churn_frame: pd.DataFrame
) -> None:
    """A serving replica decides trust at load, and common models need no sklearn for it."""
    import os

    with milepost.start_run():
        mv = milepost.log_model(
            churn_models["good"], "churn", input_example=churn_frame[FEATURES].head(3), onnx=True
        )
    script = (
        "import sys, milepost\n"
        "m = milepost.get_runtime().models.load(sys.argv[1], prefer_onnx=True)\n"
        "print(m.uses_onnx, 'sklearn' in sys.modules, 'skops' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env |= runtime.settings.to_env()
    out = subprocess.run(
        [sys.executable, "-c", script, mv.uri], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "False", "False"]


# -- a model whose code is not installed where it is loaded -----------------------------


@pytest.fixture
def custom_module(tmp_path: Path) -> Iterator[str]:
    name = f"mp_custom_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        "import numpy as np\n"
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "class Doubler(BaseEstimator, TransformerMixin):\n"
        "    def fit(self, X, y=None):\n"
        "        return self\n"
        "    def transform(self, X):\n"
        "        return np.asarray(X, dtype=float) * 2\n"
        "class Constant:\n"
        "    def predict(self, X):\n"
        "        return np.zeros(len(X))\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield name
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))
    sys.modules.pop(name, None)


def _uninstall(name: str, tmp_path: Path) -> None:
    sys.path.remove(str(tmp_path))
    sys.modules.pop(name, None)


def test_a_missing_class_is_a_one_line_error_everywhere(
    runtime: Runtime, custom_module: str, tmp_path: Path, churn_frame: pd.DataFrame
) -> None:
    import importlib

    mod = importlib.import_module(custom_module)
    doubler = f"{custom_module}.Doubler"
    frame = churn_frame[["age", "tenure_months"]].astype(float)
    model = Pipeline([("double", mod.Doubler()), ("model", LogisticRegression())]).fit(
        frame, churn_frame[LABEL]
    )
    milepost.data.register("ages", frame.assign(churned=churn_frame[LABEL]))
    with milepost.start_run():
        mv = milepost.log_model(
            model, "custom", input_example=frame.head(5), trusted_types=[doubler]
        )
        pickled = milepost.log_model(mod.Constant(), "pickled", input_example=frame.head(5))
    _uninstall(custom_module, tmp_path)
    _runtime_with(runtime, trusted_types=doubler)
    with pytest.raises(ConfigError) as info:
        milepost.load_model(mv.uri)
    message = str(info.value)
    assert f"models:/custom/1 cannot be loaded here: it needs module '{custom_module}'" in message
    assert f"(for '{doubler}')" in message and "\n" not in message
    with pytest.raises(ConfigError, match=f"needs module '{custom_module}'"):
        milepost.load_model(pickled.uri, trusted=True)
    # the gate records it as an error; the deployment refuses it
    c = Client()
    c.set_promotion_policy(
        "custom",
        {
            "staging": [
                {
                    "kind": "metric_vs_baseline",
                    "dataset": "ages@1",
                    "target": LABEL,
                    "threshold": 0.1,
                }
            ]
        },
    )
    with pytest.raises(GateFailed) as gate_info:
        c.promote("custom", 1, "Staging")
    (gate,) = gate_info.value.details["gates"]
    assert gate["status"] == "error" and f"needs module '{custom_module}'" in gate["message"]
    with pytest.raises(ConfigError, match=f"needs module '{custom_module}'"):
        milepost.get_runtime().serving.create("custom-ep", "custom", version=1)


def test_a_missing_library_names_what_to_install(
    runtime: Runtime, churn_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    lightgbm = optional_import("lightgbm", extra="dev")
    frame = churn_frame[["age", "tenure_months"]].astype(float)
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(frame, churn_frame[LABEL])
    with milepost.start_run():
        mv = milepost.log_model(model, "lgbm", input_example=frame.head(5))
    for name in [m for m in sys.modules if m == "lightgbm" or m.startswith("lightgbm.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    with pytest.raises(ConfigError) as info:
        milepost.load_model(mv.uri)
    message = str(info.value)
    assert "needs module 'lightgbm'" in message and "lightgbm.sklearn.LGBMClassifier" in message
    assert f"pip install 'lightgbm=={lightgbm.__version__}'" in message and "\n" not in message
