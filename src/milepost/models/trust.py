"""Which types a skops model file may hold: the loading side decides, never the file.

A skops file names the types it is rebuilt from. skops trusts a small default set by
itself (plain containers, numpy arrays and dtypes, numpy and SciPy ufuncs, scikit-learn's
public estimators); :func:`audit` decides about every other type, each seen with the
*role* the file gives it (the skops loader that rebuilds it), because a class that is safe
to rebuild from its attributes (``ObjectNode``) may run anything when the file calls it
with arguments (``ConstructorFromReduceNode``).

A type is trusted when

1. the built-in allow-list admits it in that role: the exact entries of
   :data:`BUILTIN_TYPES` (internals of common models, with the roles they appear in), or
   a class rebuilt only from its attributes that is a scikit-learn estimator or a
   cross-validation splitter defined by one of :data:`KNOWN_LIBRARIES` (outside their
   testing helpers); or
2. the loading side names it: the ``trusted_types`` argument, the
   ``MILEPOST_TRUSTED_TYPES`` setting, or the approver-set list
   (``milepost models trust add``).

What the author declared when logging is shown as information and trusts nothing. No
built-in entry is a function that can run code or a whole module; resolving a name to
check its kind imports a module only when its top-level package is one of the known
libraries, never a module the file chose. The two tree types that the list admits hold
raw node indices that scikit-learn follows without bounds checks, so :func:`check_contents`
verifies them after loading.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milepost.errors import ConfigError, IntegrityViolation, InvalidInput, PermissionDenied
from milepost.models import _schema

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

__all__ = [
    "BUILTIN_TYPES",
    "KNOWN_LIBRARIES",
    "Audit",
    "audit",
    "builtin_trusts",
    "check_contents",
    "check_type_name",
    "missing_module_error",
    "untrusted_error",
]

# Libraries whose classes may be resolved (imported) to check their kind.
KNOWN_LIBRARIES = ("numpy", "scipy", "sklearn", "lightgbm", "xgboost", "catboost")

_OBJECT = frozenset({"ObjectNode"})
_FUNCTION = frozenset({"FunctionNode"})

# Exact names admitted beyond skops' defaults, each only in the roles it has in real files.
BUILTIN_TYPES: dict[str, frozenset[str]] = {
    # Trees of forests, gradient boosting and HistGradientBoosting; checked after loading.
    "sklearn.tree._tree.Tree": frozenset({"TreeNode"}),
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": _OBJECT,
    # The search trees of nearest-neighbour models; checked after loading too.
    "sklearn.neighbors._kd_tree.KDTree": _OBJECT,
    "sklearn.neighbors._ball_tree.BallTree": _OBJECT,
    # The boosters inside the LightGBM and XGBoost scikit-learn wrappers.
    "lightgbm.basic.Booster": _OBJECT,
    "xgboost.core.Booster": _OBJECT,
    # Data holders inside common estimators.
    "sklearn.utils._bunch.Bunch": frozenset({"DictNode"}),
    "sklearn.calibration._CalibratedClassifier": _OBJECT,
    "sklearn.metrics._scorer._PassthroughScorer": _OBJECT,
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer": _OBJECT,
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer": _OBJECT,
    "sklearn.metrics._dist_metrics.EuclideanDistance64": _OBJECT,
    "sklearn.metrics._dist_metrics.EuclideanDistance32": _OBJECT,
    "sklearn.impute._iterative._ImputerTriplet": frozenset({"TupleNode"}),
    "scipy.interpolate._bsplines.BSpline": _OBJECT,
    "collections.OrderedDict": frozenset({"TypeNode", "DictNode"}),
    "numpy.dtype": frozenset({"DTypeNode", "TypeNode"}),
    # A partial always rebuilds as functools.partial; its function is checked on its own.
    "functools.partial": frozenset({"PartialNode"}),
    # Functions that only compute on arrays (input validation, feature scores).
    "sklearn.utils.validation.check_array": _FUNCTION,
    "scipy._lib.array_api_compat.numpy._aliases.asarray": _FUNCTION,
    "sklearn.feature_selection._univariate_selection.f_classif": _FUNCTION,
    "sklearn.feature_selection._univariate_selection.f_regression": _FUNCTION,
    "sklearn.feature_selection._univariate_selection.r_regression": _FUNCTION,
    "sklearn.feature_selection._univariate_selection.chi2": _FUNCTION,
    "sklearn.feature_selection._mutual_info.mutual_info_classif": _FUNCTION,
    "sklearn.feature_selection._mutual_info.mutual_info_regression": _FUNCTION,
}

# Module path parts that mark testing helpers, private entry points or test suites.
_TESTING = {
    "tests",
    "testing",
    "_testing",
    "_mocking",
    "_testutils",
    "_pytesttester",
    "conftest",
    "estimator_checks",
}
_TYPE_NAME_MAX = 512
_CHECKED_TREES = {
    "sklearn.tree._tree.Tree": "sklearn.tree._tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": (
        "sklearn.ensemble._hist_gradient_boosting.predictor"
    ),
    "sklearn.neighbors._kd_tree.KDTree": "sklearn.neighbors._kd_tree",
    "sklearn.neighbors._ball_tree.BallTree": "sklearn.neighbors._ball_tree",
}
_PIP_NAMES = {"sklearn": "scikit-learn", "skops": "skops"}


def check_type_name(name: Any) -> str:
    """Refuse anything but a dotted Python name (``package.module.Name``)."""
    ok = (
        isinstance(name, str)
        and 0 < len(name) <= _TYPE_NAME_MAX
        and "." in name
        and all(part.isidentifier() for part in name.split("."))
    )
    if not ok:
        raise InvalidInput(
            f"{name!r} is not a type name: use the dotted path a model file names, "
            "such as 'mypkg.transformers.Doubler'.",
        )
    assert isinstance(name, str)
    return name


# -- the built-in decision --------------------------------------------------------------


@dataclass(frozen=True)
class _Missing:
    module: str


def _resolve(name: str) -> type | _Missing | None:
    """The class ``name`` denotes, importing only modules of the known libraries."""
    module, _, attr = name.rpartition(".")
    parts = module.split(".")
    if parts[0] not in KNOWN_LIBRARIES or not attr.isidentifier():
        return None
    if any(p.startswith("_" * 2) or p in _TESTING or p.startswith("test_") for p in parts):
        return None
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # the library (or one it needs) is not installed here: the model cannot load at all
        top = (exc.name or "").split(".")[0]
        return _Missing(top) if top and sys.modules.get(top) is None else None
    except Exception:  # a known library's module that does not import here
        return None
    obj = getattr(mod, attr, None)
    return obj if isinstance(obj, type) else None


def _kind_trusted(cls: type) -> bool:
    """A scikit-learn estimator or splitter class defined by a known library."""
    parts = str(getattr(cls, "__module__", "")).split(".")
    if parts[0] not in KNOWN_LIBRARIES or any(p in _TESTING for p in parts):
        return False
    try:
        from sklearn.base import BaseEstimator
        from sklearn.model_selection import BaseCrossValidator, BaseShuffleSplit
    except ImportError:
        return False
    return issubclass(cls, (BaseEstimator, BaseCrossValidator, BaseShuffleSplit))


def builtin_trusts(name: str, roles: frozenset[str]) -> bool | _Missing:
    """Whether the built-in allow-list admits ``name`` in every role the file gives it."""
    if not roles:
        return False
    allowed = BUILTIN_TYPES.get(name)
    if allowed is not None:
        return roles <= allowed
    if roles != _OBJECT:
        return False
    cls = _resolve(name)
    if isinstance(cls, _Missing):
        return cls
    return cls is not None and _kind_trusted(cls)


# -- the audit ------------------------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    """What a skops file holds beyond skops' defaults, and who trusts each type."""

    types: tuple[str, ...]
    builtin: tuple[str, ...] = ()
    named: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    missing: dict[str, str] = field(default_factory=dict)  # type -> uninstalled package

    @property
    def trusted(self) -> list[str]:
        """The types to hand skops as trusted."""
        return [*self.builtin, *self.named]


def _skops() -> Any:
    try:
        import skops.io as sio
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "Model files of the sklearn flavor need skops.", hint="pip install 'milepost[models]'"
        ) from exc
    return sio


def audit(data: bytes, named: Iterable[str] = ()) -> Audit:
    """Decide about every type of a skops file that skops does not trust by itself.

    Args:
        data: the file's bytes.
        named: types the loading side trusts (argument, setting, approver-set list).
    """
    sio = _skops()
    try:
        types = list(sio.get_untrusted_types(data=data))
    except Exception as exc:  # skops rejects malformed schemas with assorted errors
        raise InvalidInput(
            f"The model file is not a readable skops file: {type(exc).__name__}: {exc}.",
            hint="Log the model again.",
        ) from exc
    if not types:
        return Audit(())
    roles = _schema.roles(data)
    extra = set(named)
    builtin, by_name, refused, missing = [], [], [], {}
    for name in types:
        if name in extra:
            by_name.append(name)
            continue
        verdict = builtin_trusts(name, roles.get(name, frozenset()))
        if verdict is True:
            builtin.append(name)
        else:
            refused.append(name)
            if isinstance(verdict, _Missing):
                missing[name] = verdict.module
    return Audit(tuple(types), tuple(builtin), tuple(by_name), tuple(refused), missing)


def untrusted_error(
    what: str, refused: Collection[str], declared: Collection[str] = ()
) -> PermissionDenied:
    """The refusal for a file holding types nobody on the loading side trusts."""
    names = sorted(refused)
    shown = ", ".join(repr(n) for n in names[:8]) + (
        f" and {len(names) - 8} more" if len(names) > 8 else ""
    )
    author = [n for n in names if n in set(declared)]
    note = (
        f" Its author declared {', '.join(map(repr, author))} when logging it; that is "
        "information, not trust."
        if author
        else ""
    )
    return PermissionDenied(
        f"Refusing to load {what}: its file holds {'type' if len(names) == 1 else 'types'} "
        f"{shown}, which this process does not trust (rebuilding an untrusted type can run "
        f"any code).{note}",
        hint=f"If you trust their code, trust them on the loading side: pass "
        f"trusted_types={names!r} to load_model, set MILEPOST_TRUSTED_TYPES="
        f"{','.join(names)} for this process, or have an approver or admin trust them "
        f"for everyone: milepost models trust add {names[0]} --reason '...'.",
        details={"untrusted_types": names},
    )


def missing_module_error(
    what: str, module: str, type_name: str | None, packages: Iterable[str] = ()
) -> ConfigError:
    """The one-line error for a model whose code is not installed where it is loaded.

    ``module`` is what failed to import; when its top-level package is not installed at
    all, the error names that package.
    """
    top = module.split(".", maxsplit=1)[0]
    with contextlib.suppress(ValueError):  # find_spec refuses modules without a spec
        if module != top and importlib.util.find_spec(top) is None:
            module = top
    pip_name = _PIP_NAMES.get(top, top)
    logged = next(
        (
            p
            for p in packages
            if p.split("==")[0] in {pip_name.lower(), top.lower().replace("_", "-")}
        ),
        None,
    )
    needs = f"module {module!r}" + (f" (for {type_name!r})" if type_name else "")
    install = f"pip install '{logged}'" if logged else f"pip install {pip_name}"
    return ConfigError(
        f"{what} cannot be loaded here: it needs {needs}, which is not installed in this "
        "environment.",
        hint=f"Install the package that provides it ({install}"
        + (", the version the model was logged with" if logged else "")
        + ") where the model is loaded.",
        details={"missing_module": module, "type": type_name},
    )


# -- checking what the admitted tree types hold -----------------------------------------


def _bad_tree(what: str, kind: str, detail: str) -> IntegrityViolation:
    return IntegrityViolation(
        f"{what}: a {kind} in the model file {detail}; the file was crafted or corrupted, "
        "and predicting with it would read outside the tree.",
        hint="Log the model again from its training code.",
    )


def _check_tree(tree: Any, n_features: int | None, what: str) -> None:
    # Tree.__setstate__ checks dtypes and shapes and caps node_count at the array size;
    # it does not check that child and feature indices stay inside the tree and the input.
    import numpy as np

    count = int(tree.node_count)
    left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
    feature = np.asarray(tree.feature)
    bound = int(tree.n_features) if n_features is None else min(int(tree.n_features), n_features)
    leaf = left == -1
    idx = np.arange(count)
    inner = ~leaf
    ok = bool(np.all(leaf == (right == -1))) and bool(
        np.all(
            (left[inner] > idx[inner])
            & (left[inner] < count)
            & (right[inner] > idx[inner])
            & (right[inner] < count)
            & (feature[inner] >= 0)
            & (feature[inner] < bound)
        )
    )
    if not ok:
        raise _bad_tree(
            what, "decision tree", "has a node whose children or feature are out of range"
        )


def _check_predictor(pred: Any, owner: Any, what: str) -> None:
    import numpy as np

    bound = getattr(owner, "n_features_in_", None)
    if not isinstance(bound, (int, np.integer)):
        raise _bad_tree(what, "TreePredictor", "is not inside a fitted HistGradientBoosting model")
    nodes = pred.nodes
    n = len(nodes)
    raw, binned = pred.raw_left_cat_bitsets, pred.binned_left_cat_bitsets
    for bits in (raw, binned):
        if np.ndim(bits) != 2 or np.shape(bits)[1] != 8:
            raise _bad_tree(what, "TreePredictor", "has category bitsets of the wrong shape")
    mapper = getattr(owner, "_bin_mapper", None)
    is_cat = np.asarray(getattr(mapper, "is_categorical_", np.zeros(0, bool)), dtype=bool)
    idx = np.arange(n)
    inner = nodes["is_leaf"] == 0
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    feat = nodes["feature_idx"].astype(np.int64)
    ok = bool(
        np.all(
            (left[inner] > idx[inner])
            & (left[inner] < n)
            & (right[inner] > idx[inner])
            & (right[inner] < n)
            & (feat[inner] >= 0)
            & (feat[inner] < int(bound))
        )
    )
    cat = inner & (nodes["is_categorical"] != 0)
    if ok and cat.any():
        bitset = nodes["bitset_idx"][cat].astype(np.int64)
        f = feat[cat]
        ok = (
            bool(np.all((bitset >= 0) & (bitset < min(len(raw), len(binned)))))
            and bool(np.all(f < len(is_cat)))
            and bool(np.all(is_cat[np.minimum(f, max(len(is_cat) - 1, 0))]))
        )
    if n == 0 or not ok:
        raise _bad_tree(
            what,
            "TreePredictor",
            "has a node whose children, feature or category set are out of range",
        )


def _check_search_tree(tree: Any, what: str) -> None:
    # BinaryTree.__setstate__ takes its arrays as they come; queries follow node_data's
    # index ranges into idx_array and idx_array into data, and walk children 2i+1, 2i+2.
    import numpy as np

    state = tree.__getstate__()
    data, idx_array = np.asarray(state[0]), np.asarray(state[1])
    node_data, bounds = np.asarray(state[2]), np.asarray(state[3])
    n_levels, n_nodes, weights = int(state[5]), int(state[6]), state[12]
    kind = type(tree).__name__
    ok = data.ndim == 2 and idx_array.ndim == 1 and len(idx_array) == len(data)
    ok = ok and 0 < n_levels < 64 and n_nodes == 2**n_levels - 1 and len(node_data) == n_nodes
    ok = ok and bounds.ndim == 3 and bounds.shape[1:] == (n_nodes, data.shape[1] if ok else -1)
    ok = ok and bounds.shape[0] == (2 if kind == "KDTree" else 1)
    ok = ok and (weights is None or np.shape(weights) == (len(data),))
    if ok:
        n = len(data)
        start, end = node_data["idx_start"], node_data["idx_end"]
        inner = np.flatnonzero(node_data["is_leaf"] == 0)
        ok = (
            bool(np.all((idx_array >= 0) & (idx_array < n)))
            and bool(np.all((start >= 0) & (start <= end) & (end <= n)))
            and bool(np.all(2 * inner + 2 < n_nodes))
        )
    if not ok:
        raise _bad_tree(what, kind, "has nodes or indices out of range")


def check_contents(obj: Any, types: Collection[str], what: str) -> None:
    """Check the node indices of every admitted tree in a loaded model.

    Raises:
        IntegrityViolation: a tree node points outside its tree or its input.
    """
    import numpy as np

    present = {name: module for name, module in _CHECKED_TREES.items() if name in set(types)}
    if not present:
        return
    classes: dict[type, str] = {}
    for name, module in present.items():
        classes[getattr(importlib.import_module(module), name.rsplit(".", 1)[1])] = name
    seen: set[int] = set()
    stack: list[tuple[Any, Any]] = [(obj, None)]
    while stack:
        item, owner = stack.pop()
        if id(item) in seen or item is None or isinstance(item, (str, bytes, int, float)):
            continue
        seen.add(id(item))
        kind = classes.get(type(item))
        if kind == "sklearn.tree._tree.Tree":
            bound = getattr(owner, "n_features_in_", None)
            _check_tree(item, int(bound) if isinstance(bound, (int, np.integer)) else None, what)
        elif kind is not None and kind.endswith("TreePredictor"):
            _check_predictor(item, owner, what)
        elif kind is not None:
            _check_search_tree(item, what)
        elif isinstance(item, dict):
            stack.extend((v, owner) for v in item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend((v, owner) for v in item)
        elif isinstance(item, np.ndarray):
            if item.dtype == object:
                stack.extend((v, owner) for v in item.ravel())
        elif hasattr(item, "__dict__"):
            child_owner = item if hasattr(item, "n_features_in_") else owner
            stack.extend((v, child_owner) for v in vars(item).values())
