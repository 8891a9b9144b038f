"""Trust in a model file is the loader's decision, and the built-in allow-list admits no code.

Every exploit variant the security review tried (and the obvious relatives) is built here
as a real skops file, either by saving an object that holds the gadget or, for gadgets
that run while the file loads, by writing the file's schema by hand. Each must be
refused by ``flavors.load`` with the type named, and must not have run.
"""

from __future__ import annotations

import functools
import io
import json
import operator
import os
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from milepost.errors import IntegrityViolation, InvalidInput, PermissionDenied
from milepost.models import flavors, trust
from tests.conftest import optional_import

MARKER = "pwned.txt"


# -- building skops files by hand (for gadgets that run while the file loads) -----------


def _json(value: Any) -> dict[str, Any]:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
    }


def _state(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and "__loader__" in value:
        return value
    if isinstance(value, list):
        return {
            "__class__": "list",
            "__module__": "builtins",
            "__loader__": "ListNode",
            "content": [_state(v) for v in value],
        }
    return _json(value)


def _args(*args: Any) -> dict[str, Any]:
    return {
        "__class__": "tuple",
        "__module__": "builtins",
        "__loader__": "TupleNode",
        "content": [_state(a) for a in args],
    }


def _call(module: str, name: str, *args: Any) -> dict[str, Any]:
    """A node skops constructs as ``module.name(*args)`` while loading."""
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": _args(*args),
    }


def _file(schema: dict[str, Any]) -> bytes:
    schema = {**schema, "protocol": sio._protocol.PROTOCOL, "_skops_version": skops.__version__}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("schema.json", json.dumps(schema))
    return buffer.getvalue()


def _in_estimator(node: dict[str, Any]) -> bytes:
    """A fitted-looking LogisticRegression whose state carries ``node`` as an attribute."""
    schema = json.loads(
        zipfile.ZipFile(io.BytesIO(sio.dumps(LogisticRegression()))).read("schema.json")
    )
    schema["content"]["content"]["gadget"] = node
    return _file(schema)


def _shell(marker: Path) -> str:
    return f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')"


# Gadgets that run code while the file loads: (name expected in the refusal, file builder).
LOAD_TIME: dict[str, tuple[str, Callable[[Path], bytes]]] = {
    "builtins.exec": ("builtins.exec", lambda m: _file(_call("builtins", "exec", _shell(m)))),
    "builtins.eval": (
        "builtins.eval",
        lambda m: _file(_call("builtins", "eval", f"exec({_shell(m)!r})")),
    ),
    "builtins.__import__": (
        "builtins.__import__",
        lambda m: _file(_call("builtins", "__import__", "os")),
    ),
    "builtins.getattr": (
        "builtins.getattr",
        lambda m: _file(_call("builtins", "getattr", _call("builtins", "str", "x"), "upper")),
    ),
    "builtins.open": ("builtins.open", lambda m: _file(_call("builtins", "open", str(m), "w"))),
    "os.system": ("os.system", lambda m: _file(_call("os", "system", f"touch {m}"))),
    "subprocess.run": (
        "subprocess.run",
        lambda m: _file(_call("subprocess", "run", ["touch", str(m)])),
    ),
    "subprocess.Popen": (
        "subprocess.Popen",
        lambda m: _file(_call("subprocess", "Popen", ["touch", str(m)])),
    ),
    "numpy.memmap writes a file": (
        "numpy.memmap",
        lambda m: _file(_call("numpy", "memmap", str(m), "uint8", "w+", 0, [1])),
    ),
    "numpy.testing runstring": (
        "numpy.testing._private.utils.runstring",
        lambda m: _file(_call("numpy.testing._private.utils", "runstring", _shell(m), {})),
    ),
    "exec hidden in an estimator attribute": (
        "builtins.exec",
        lambda m: _in_estimator(_call("builtins", "exec", _shell(m))),
    ),
    "Popen hidden in an estimator attribute": (
        "subprocess.Popen",
        lambda m: _in_estimator(_call("subprocess", "Popen", ["touch", str(m)])),
    ),
    "a known class called with arguments": (
        "sklearn.linear_model._logistic.LogisticRegression",
        lambda m: _file(_call("sklearn.linear_model._logistic", "LogisticRegression", 1.0)),
    ),
}


@pytest.mark.parametrize("case", list(LOAD_TIME))
def test_load_time_gadgets_are_refused_and_never_run(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    name, build = LOAD_TIME[case]
    marker = tmp_path / MARKER
    data = build(marker)
    assert name in sio.get_untrusted_types(data=data)  # a well-formed file naming the gadget
    with pytest.raises(PermissionDenied, match=rf"'{name}'") as info:
        flavors.load("sklearn", data)
    message = str(info.value)
    assert "trusted_types=" in message and "MILEPOST_TRUSTED_TYPES" in message
    assert "milepost models trust add" in message
    assert not marker.exists()


def test_the_gadget_files_are_real_exploits(tmp_path: Path) -> None:
    """The loading side may still trust a type explicitly; then the file does what it says."""
    marker = tmp_path / MARKER
    flavors.load("sklearn", LOAD_TIME["builtins.exec"][1](marker), trusted_types=["builtins.exec"])
    assert marker.read_text() == "x"


def _gadget_functions() -> dict[str, Any]:
    from numpy.testing._private import utils as np_testing
    from sklearn.utils import _testing as sk_testing

    return {
        "subprocess.run": subprocess.run,
        "subprocess.Popen": subprocess.Popen,
        "os.system": os.system,
        "builtins.exec": exec,
        "builtins.eval": eval,
        "builtins.getattr": getattr,
        "builtins.__import__": __import__,
        "builtins.open": open,
        "functools.partial": functools.partial(subprocess.run, ["touch", MARKER]),
        "operator.methodcaller": operator.methodcaller("system", f"touch {MARKER}"),
        "operator.attrgetter": operator.attrgetter("__globals__"),
        "numpy.testing._private.utils.runstring": np_testing.runstring,
        "sklearn.utils._testing.assert_run_python_script_without_output": (
            sk_testing.assert_run_python_script_without_output
        ),
        "numpy.load": functools.partial(np.load, allow_pickle=True),
        "numpy.fromfile": np.fromfile,
        "numpy.save": np.save,
        "numpy.vectorize": np.vectorize(subprocess.run),
        "pandas.eval": pd.eval,
    }


@pytest.mark.parametrize("name", list(_gadget_functions()))
def test_callables_inside_a_function_transformer_are_refused(name: str) -> None:
    func = _gadget_functions()[name]
    model = make_pipeline(FunctionTransformer(func), LogisticRegression())
    data = sio.dumps(model)
    with pytest.raises(PermissionDenied, match="which this process does not trust"):
        flavors.load("sklearn", data)
    # the author may save it by declaring what it holds, but that trusts nothing on load
    saved = flavors.save(model, "sklearn", trusted_types=sio.get_untrusted_types(data=data))
    with pytest.raises(PermissionDenied, match="which this process does not trust"):
        flavors.load("sklearn", saved)


def test_dangerous_objects_as_estimator_attributes_are_refused() -> None:
    from numpy._pytesttester import PytestTester
    from sklearn.utils._mocking import CheckingClassifier

    X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
    fitted = LogisticRegression().fit(X, y)
    fitted.callback_ = subprocess.run  # a function smuggled into the fitted state
    with pytest.raises(PermissionDenied, match=r"'subprocess.run'"):
        flavors.load("sklearn", sio.dumps(fitted))
    fitted = LogisticRegression().fit(X, y)
    fitted.tester_ = PytestTester("os")  # a callable class from a known library
    with pytest.raises(PermissionDenied, match=r"'numpy._pytesttester.PytestTester'"):
        flavors.load("sklearn", sio.dumps(fitted))
    # an estimator from a library's testing helpers is not an estimator to trust
    mock = CheckingClassifier().fit(X, y)
    with pytest.raises(PermissionDenied, match="CheckingClassifier"):
        flavors.load("sklearn", sio.dumps(mock))


def test_the_built_in_list_names_no_function_that_runs_code() -> None:
    for name, roles in trust.BUILTIN_TYPES.items():
        assert name.split(".")[0] in (*trust.KNOWN_LIBRARIES, "functools", "collections")
        if "FunctionNode" in roles:
            assert name.split(".")[0] in ("numpy", "scipy", "sklearn"), name
    for bad in ("builtins.exec", "builtins.eval", "subprocess.run", "numpy.load", "os.system"):
        assert not trust.builtin_trusts(bad, frozenset({"FunctionNode"}))
        assert not trust.builtin_trusts(bad, frozenset({"ObjectNode"}))


def test_attacker_chosen_modules_are_never_imported(tmp_path: Path) -> None:
    import sys

    evil = tmp_path / "evil_module_for_milepost_test.py"
    evil.write_text(f"open({str(tmp_path / MARKER)!r}, 'w').write('x')\nclass Thing: pass\n")
    sys.path.insert(0, str(tmp_path))
    try:
        data = _file(
            {
                "__class__": "Thing",
                "__module__": "evil_module_for_milepost_test",
                "__loader__": "ObjectNode",
            }
        )
        with pytest.raises(PermissionDenied, match=r"evil_module_for_milepost_test.Thing"):
            flavors.load("sklearn", data)
        data = _file(
            {"__class__": "Thing", "__module__": "sklearn.tests.evil", "__loader__": "ObjectNode"}
        )
        with pytest.raises(PermissionDenied, match=r"sklearn.tests.evil.Thing"):
            flavors.load("sklearn", data)
    finally:
        sys.path.remove(str(tmp_path))
    assert "evil_module_for_milepost_test" not in sys.modules
    assert not (tmp_path / MARKER).exists()


# -- legitimate models keep loading -------------------------------------------------------


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=300),
            "b": rng.exponential(size=300),
            "c": rng.choice(["x", "y", "z"], 300),
        }
    )
    return X, (X["a"] + rng.normal(scale=0.5, size=300) > 0).astype(int).to_numpy()


def _prep() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", StandardScaler(), ["a", "b"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["c"]),
        ]
    )


LEGIT: dict[str, Callable[[], Any]] = {
    "logistic pipeline (demo)": lambda: Pipeline(
        [("prep", _prep()), ("model", LogisticRegression())]
    ),
    "hist gradient boosting pipeline (demo)": lambda: Pipeline(
        [("prep", _prep()), ("model", HistGradientBoostingClassifier(max_iter=20))]
    ),
    "random forest pipeline (demo)": lambda: Pipeline(
        [("prep", _prep()), ("model", RandomForestClassifier(n_estimators=5, random_state=0))]
    ),
    "hist gradient boosting on categories": lambda: HistGradientBoostingClassifier(
        max_iter=20, early_stopping=True, categorical_features="from_dtype"
    ),
    "gradient boosting": lambda: Pipeline(
        [("prep", _prep()), ("model", GradientBoostingClassifier(n_estimators=5))]
    ),
    "decision tree": lambda: Pipeline([("prep", _prep()), ("model", DecisionTreeClassifier())]),
    "lightgbm": lambda: Pipeline(
        [
            ("prep", _prep()),
            (
                "model",
                optional_import("lightgbm", extra="dev").LGBMClassifier(n_estimators=5, verbose=-1),
            ),
        ]
    ),
    "xgboost": lambda: Pipeline(
        [
            ("prep", _prep()),
            ("model", optional_import("xgboost", extra="dev").XGBClassifier(n_estimators=5)),
        ]
    ),
    "nearest neighbours (kd tree)": lambda: Pipeline(
        [
            ("prep", _prep()),
            ("model", __import__("sklearn.neighbors").neighbors.KNeighborsClassifier()),
        ]
    ),
    "log1p": lambda: Pipeline(
        [
            ("prep", ColumnTransformer([("log", FunctionTransformer(np.log1p), ["b"])])),
            ("impute", SimpleImputer()),
            ("model", LogisticRegression()),
        ]
    ),
}


@pytest.mark.parametrize("case", list(LEGIT))
def test_legitimate_models_load_without_naming_anything(
    case: str, frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = frame
    if case == "hist gradient boosting on categories":
        X = X.astype({"c": "category"})
    model = LEGIT[case]().fit(X, y)
    data = flavors.save(model, "sklearn")
    loaded = flavors.load("sklearn", data)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_save_refuses_undeclared_types_with_a_hint() -> None:
    model = make_pipeline(FunctionTransformer(subprocess.run), LogisticRegression())
    with pytest.raises(InvalidInput, match=r"'subprocess.run'.*trusted_types"):
        flavors.save(model, "sklearn")


# -- the tree types the list admits are checked after loading --------------------------


def _tampered_forest(X: np.ndarray, y: np.ndarray) -> Any:
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    tree = forest.estimators_[1].tree_
    state = dict(tree.__getstate__())
    nodes = state["nodes"].copy()
    nodes["feature"][0] = 10**6  # the root splits on a column the input does not have
    state["nodes"] = nodes
    tree.__setstate__(state)
    return forest


def _tampered_hgb(X: np.ndarray, y: np.ndarray) -> Any:
    hgb = HistGradientBoostingClassifier(max_iter=3).fit(X, y)
    hgb._predictors[2][0].nodes["left"][0] = 10**6  # a child far outside the tree
    return hgb


def _tampered_knn(X: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(algorithm="kd_tree").fit(X, y)
    state = list(knn._tree.__getstate__())
    state[1] = state[1].copy()
    state[1][3] = 10**6  # an index past the training data
    knn._tree.__setstate__(tuple(state))
    return knn


@pytest.mark.parametrize("tamper", [_tampered_forest, _tampered_hgb, _tampered_knn])
def test_trees_pointing_outside_themselves_are_refused(
    tamper: Callable[[np.ndarray, np.ndarray], Any],
) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(IntegrityViolation, match="out of range"):
        flavors.load("sklearn", sio.dumps(tamper(X, y)))


# -- the schema-only decision an ONNX-served replica makes without importing sklearn ----


def test_the_static_tables_admit_only_what_the_full_audit_trusts() -> None:
    from skops.io import _trusted_types as skops_defaults
    from skops.io._sklearn import ALLOWED_LOSSES
    from skops.io._utils import get_type_name

    from milepost.models import _schema

    skops_objects = set(skops_defaults.SKLEARN_ESTIMATOR_TYPE_NAMES) | set(
        skops_defaults.SKLEARN_INTERNAL_TYPE_NAMES
    )
    for name in _schema._COMMON_OBJECTS:
        assert name in skops_objects or trust.builtin_trusts(name, frozenset({"ObjectNode"})), name
    losses = {get_type_name(t) for t in ALLOWED_LOSSES}
    assert losses >= _schema._BY_LOADER["LossNode"]
    assert set(skops_defaults.NUMPY_DTYPE_TYPE_NAMES) >= _schema._numpy_dtypes()
    assert {n for n, r in trust.BUILTIN_TYPES.items() if "FunctionNode" in r} >= _schema._FUNCTIONS
    for loader in ("TreeNode", "PartialNode", "DTypeNode"):
        for name in _schema._BY_LOADER[loader]:
            assert trust.builtin_trusts(name, frozenset({loader})), name


@pytest.mark.parametrize("case", list(LEGIT))
def test_common_models_are_decided_from_the_schema_alone(
    case: str, frame: tuple[pd.DataFrame, np.ndarray]
) -> None:
    from milepost.models import _schema

    X, y = frame
    if case == "hist gradient boosting on categories":
        X = X.astype({"c": "category"})
    data = sio.dumps(LEGIT[case]().fit(X, y))
    if "nearest" not in case:  # a KD tree needs the full audit (and its checks)
        assert _schema.plainly_trusted(data)
    assert trust.audit(data).refused == ()


@pytest.mark.parametrize("case", list(LOAD_TIME))
def test_no_gadget_passes_the_schema_alone(case: str, tmp_path: Path) -> None:
    from milepost.models import _schema

    data = LOAD_TIME[case][1](tmp_path / MARKER)
    assert not _schema.plainly_trusted(data)
    with pytest.raises(PermissionDenied):
        flavors.check("sklearn", data)


@pytest.mark.parametrize("name", list(_gadget_functions()))
def test_no_gadget_function_passes_the_schema_alone(name: str) -> None:
    from milepost.models import _schema

    data = sio.dumps(
        make_pipeline(FunctionTransformer(_gadget_functions()[name]), LogisticRegression())
    )
    assert not _schema.plainly_trusted(data)
    with pytest.raises(PermissionDenied):
        flavors.check("sklearn", data)
