"""Reading a skops file's schema without skops: the types it names, in their roles.

skops itself cannot be imported without importing all of scikit-learn (about a second and
100 MiB), which an ONNX-served replica otherwise never needs. Trust must still be decided
when such a replica loads a version, so :func:`plainly_trusted` answers the common case
from the schema alone: it is True only when every node names a type that a static table
admits in that node's role, a subset of what the full audit (:func:`milepost.models.trust.audit`)
trusts. Anything else (an unknown type, role or loader) answers False, and the caller runs
the full audit. The full audit runs again whenever the native object is rebuilt.
"""

from __future__ import annotations

import io
import json
import zipfile
from functools import cache
from typing import TYPE_CHECKING, Any

from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator

__all__ = ["plainly_trusted", "roles", "schema_nodes"]

# Estimator and internal classes of common models, rebuilt from their attributes.
_COMMON_OBJECTS = frozenset(
    {
        "sklearn.pipeline.Pipeline",
        "sklearn.pipeline.FeatureUnion",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.compose._target.TransformedTargetRegressor",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._data.MinMaxScaler",
        "sklearn.preprocessing._data.MaxAbsScaler",
        "sklearn.preprocessing._data.RobustScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._encoders.OrdinalEncoder",
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.dummy.DummyClassifier",
        "sklearn.dummy.DummyRegressor",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._base.LinearRegression",
        "sklearn.linear_model._ridge.Ridge",
        "sklearn.linear_model._stochastic_gradient.SGDClassifier",
        "sklearn.linear_model._stochastic_gradient.SGDRegressor",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.tree._classes.ExtraTreeRegressor",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._forest.ExtraTreesRegressor",
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.ensemble._gb.GradientBoostingRegressor",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.LogLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss.loss.HalfPoissonLoss",
        "sklearn._loss.loss.AbsoluteError",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.basic.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
        "xgboost.core.Booster",
    }
)
_PLAIN = ("builtins.int", "builtins.float", "builtins.str", "builtins.bool")
_CONTAINERS = ("builtins.list", "builtins.set", "builtins.tuple", "builtins.map")
_FUNCTIONS = frozenset(
    {
        "sklearn.utils.validation.check_array",
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
    }
)
_BY_LOADER: dict[str, frozenset[str]] = {
    "ObjectNode": _COMMON_OBJECTS,
    "DictNode": frozenset({"builtins.dict", "collections.OrderedDict"}),
    "ListNode": frozenset({"builtins.list"}),
    "SetNode": frozenset({"builtins.set"}),
    "TupleNode": frozenset({"builtins.tuple"}),
    "BytesNode": frozenset({"builtins.bytes"}),
    "BytearrayNode": frozenset({"builtins.bytearray"}),
    "DefaultDictNode": frozenset({"collections.defaultdict"}),
    "DTypeNode": frozenset({"numpy.dtype"}),
    "PartialNode": frozenset({"functools.partial"}),
    "TreeNode": frozenset({"sklearn.tree._tree.Tree"}),
    "LossNode": frozenset(
        {
            f"sklearn._loss._loss.{name}"
            for name in (
                "CyHalfBinomialLoss",
                "CyHalfMultinomialLoss",
                "CyHalfSquaredError",
                "CyAbsoluteError",
                "CyHalfPoissonLoss",
                "CyHalfGammaLoss",
            )
        }
    ),
    "RandomStateNode": frozenset({"numpy.random.mtrand.RandomState"}),
    "RandomGeneratorNode": frozenset({"numpy.random._generator.Generator"}),
    "MaskedArrayNode": frozenset({"numpy.ma.core.MaskedArray"}),
}


@cache
def _numpy_dtypes() -> frozenset[str]:
    """numpy's scalar types, named as skops names them."""
    import numpy as np

    return frozenset(
        f"numpy.{t.__name__}"
        for t in set(np.sctypeDict.values())
        if isinstance(t, type) and getattr(np, t.__name__, None) is t
    )


def _is_ufunc(name: str) -> bool:
    import numpy as np

    module, _, attr = name.rpartition(".")
    return module == "numpy" and isinstance(getattr(np, attr, None), np.ufunc)


def _bit_generator(node: dict[str, Any]) -> str | None:
    """The bit generator class a Generator node will call (hidden in its content)."""
    try:
        state = node["content"]["bit_generator"]["content"]["bit_generator"]
        name = json.loads(state["content"])
    except (KeyError, TypeError, ValueError):
        return None
    return name if isinstance(name, str) else None


def schema_nodes(data: bytes) -> Iterator[dict[str, Any]]:
    """Every node (a dict with a loader, module and class) of a skops file's schema."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            schema = json.loads(zf.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InvalidInput(
            f"The model file is not a readable skops file: {exc}.", hint="Log the model again."
        ) from exc
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if all(isinstance(node.get(k), str) for k in ("__loader__", "__module__", "__class__")):
                yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _name(node: dict[str, Any]) -> str:
    return f"{node['__module__']}.{node['__class__']}"


def roles(data: bytes) -> dict[str, frozenset[str]]:
    """Every ``module.Name`` the schema mentions, with the loaders that rebuild it."""
    found: dict[str, set[str]] = {}
    for node in schema_nodes(data):
        loader = node["__loader__"]
        found.setdefault(_name(node), set()).add(loader)
        content = node.get("content")
        if loader == "MethodNode" and isinstance(content, dict):
            found.setdefault(f"{_name(node)}.{content.get('func')}", set()).add(loader)
    return {name: frozenset(loaders) for name, loaders in found.items()}


def _plain(node: dict[str, Any], named: Collection[str]) -> bool:
    import numpy as np

    loader, name = node["__loader__"], _name(node)
    if name in named or loader in ("JsonNode", "SliceNode"):  # skops reads JSON, slices as data
        return True
    if loader == "FunctionNode":
        return name in _FUNCTIONS or _is_ufunc(name)
    if loader in ("TypeNode", "NdArrayNode"):
        extra = (*_PLAIN, *_CONTAINERS, "collections.OrderedDict", "numpy.dtype")
        allowed = extra if loader == "TypeNode" else ("numpy.ndarray",)
        return name in allowed or name in _numpy_dtypes()
    if loader == "RandomGeneratorNode":
        bits = getattr(np.random, _bit_generator(node) or "", None)
        if not (isinstance(bits, type) and issubclass(bits, np.random.BitGenerator)):
            return False
    return name in _BY_LOADER.get(loader, frozenset())


def plainly_trusted(data: bytes, named: Collection[str] = ()) -> bool:
    """True when every type in the file is admitted by a static table in its role.

    False means only "not decided here": run the full audit.
    """
    named = set(named)
    return all(_plain(node, named) for node in schema_nodes(data))
