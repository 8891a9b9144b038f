"""Junk in, `MilepostError` out: every public entry point refuses bad arguments cleanly.

Hypothesis feeds each public entry point of the Python API generated junk for its
parameters: huge and negative numbers, NaN and infinities, text with control characters
and lone surrogates, bytes, containers, arbitrary objects, DataFrames with duplicate or
odd columns, paths to files and directories. Each parameter gets, about two times in
three, a *good* value instead (a real run id, dataset ref, model URI, feature ref,
endpoint, promotion request of a seeded store, chosen by the parameter's name), so the
junk in one argument reaches the code behind the checks of the others. Whatever
happens, the only exception that may escape is a
:class:`~milepost.errors.MilepostError` subclass: a raw ``TypeError``,
``OverflowError``, ``AttributeError`` or ``UnicodeEncodeError`` is a bug.

Covered: ``milepost.*`` functions (the ``log_*`` ones inside an active run),
``ActiveRun``, the module-level functions of ``milepost.data``, ``.evaluation``,
``.features``, ``.models`` and ``.promotion``, every ``Client`` method,
``milepost.features.FeatureStore`` (its constructor and methods), ``load_model`` and the
returned model's ``predict`` / ``predict_proba`` / ``prepare``, and the services reached
through ``get_runtime()`` that have no facade yet: deployments (``serving``), roles,
monitors, the trusted-type list, model descriptions and tags. Each test starts from its
own copy of one seeded store, so what one target's junk changes never reaches another's;
the examples are derandomized, so every run tries the same ones.
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import milepost
import milepost.data
import milepost.evaluation
import milepost.features
import milepost.models
import milepost.promotion
from milepost.demo import features as demo_features
from milepost.errors import MilepostError
from milepost.features import FeatureStore, FeatureView, Field, PushSource

# Calls that replace or drop the runtime under test (``configure`` has its own test).
SKIP = {"configure", "reset", "get_runtime"}
# Fluent calls that act on the active run: probed inside one.
NEEDS_RUN = {
    "end_run",
    "evaluate",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "set_tag",
    "set_tags",
}
# Service methods reached through ``get_runtime()`` that no facade covers yet (None: all).
SERVICES: dict[str, set[str] | None] = {
    "serving": None,
    "roles": None,
    "monitors": None,
    "models": {"add_trusted_type", "remove_trusted_type", "set_description", "set_tags"},
}
# Subpackages whose module-level functions are public entry points too.
SUBPACKAGES = [
    milepost.data,
    milepost.evaluation,
    milepost.features,
    milepost.models,
    milepost.promotion,
]
MAX_EXAMPLES = 100

clicks = FeatureView(
    name="clicks",
    entity=demo_features.customer,
    source=PushSource("clicks"),
    timestamp_field="ts",
    ttl=timedelta(hours=1),
    schema=[Field("clicks", "int")],
)
DEFINITIONS = [
    demo_features.customer,
    demo_features.customer_profile,
    demo_features.customer_activity,
    clicks,
]
END = datetime(2026, 1, 12, tzinfo=UTC)


@dataclass
class Seed:
    """What the seeded store holds, for good arguments."""

    run_id: str
    experiment_id: int
    request_id: str
    root: Path = field(default=Path())

    @property
    def file(self) -> Path:
        return self.root / "files" / "notes.txt"


_SEED: list[Seed] = []


def _frames() -> list[Any]:
    ok = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
    return [
        ok,
        ok[["x"]],
        pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], columns=["x", "x"]),
        pd.DataFrame({0: [1.0], "0": [2.0]}),
        pd.DataFrame({"customer_id": [1, 2], "event_timestamp": [pd.Timestamp(END)] * 2}),
        pd.DataFrame({"customer_id": [1], "ts": [pd.Timestamp(END)], "clicks": [10**30]}),
        pd.DataFrame(),
        pd.DataFrame({0: [1], 1.5: [2]}),
        pd.DataFrame({"x": [np.nan, np.inf]}),
        pd.DataFrame({"x\x00": [1]}),
        pd.DataFrame({"x": pd.Series(["bad\ud800"], dtype=object)}),
        {"x": [1.0]},
        [{"x": 1.0}],
        [{"customer_id": 10**30}],
        [{"customer_id": "bad\ud800", "ts": END, "clicks": 1}],
        np.zeros((2, 2)),
    ]


def _anything(seed: Seed) -> list[Any]:
    """Values that are right somewhere, fed everywhere."""
    return [
        seed.run_id,
        seed.run_id.upper(),
        seed.experiment_id,
        str(seed.experiment_id),
        seed.request_id,
        "junk",
        "churn",
        "churn@1",
        "churn@999999999999999999999",
        "customers@1",
        "models:/churn/1",
        "models:/churn/99999999999999999999999",
        "models:/churn@champion",
        "models:/churn/Production",
        "champion",
        "churn-ep",
        "customer_activity",
        "customer_activity:v1",
        "customer_activity:v99999999999999999999",
        "customer_activity:monthly_spend",
        ["customer_activity:monthly_spend"],
        "notes.txt",
        "y",
        "acc",
        "Staging",
        "Production",
        "approver",
        "a" * 300,
        "d/" * 200 + "f",
        "x\x00y",
        "x\ny",
        "x\x1b[31m",
        "x\u202ey",
        "bad\ud800",
        "..",
        "/etc/passwd",
        "metrics.acc > 1",
        "{}",
        "staging: [{kind: approval}]",
        seed.file,
        str(seed.file),
        seed.file.parent,
        b"bytes",
        1,
        2**63,
        -(2**63) - 1,
        10**30,
        2.5,
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1),
        datetime.max.replace(tzinfo=UTC),
        pd.Timestamp("2026-01-01", tz="UTC"),
        "2026-01-01",
        "garbage",
        {"a": 1},
        {"a": "bad\ud800"},
        {"bad\ud800": 1},
        {"x\x07": 1},
        {"k": 10**30},
        {("t",): 1},
        ["a", "a"],
        *_frames(),
    ]


def _good(seed: Seed) -> dict[str, list[Any]]:
    """Right values by parameter name (a name means different things in places)."""
    from sklearn.linear_model import LogisticRegression

    frame = _frames()[0]
    fitted = LogisticRegression().fit(frame[["x"]], frame["y"])
    entity_df = pd.DataFrame({"customer_id": [1, 2, 3], "event_timestamp": [pd.Timestamp(END)] * 3})
    return {
        "run_id": [seed.run_id],
        "experiment": ["junk", seed.experiment_id],
        "experiments": [["junk"], seed.experiment_id],
        "ref": ["churn@1", "churn", "junk", seed.experiment_id],
        "a": ["churn@1"],
        "b": ["churn@1", "churn"],
        "key": ["acc", "p", "t"],
        "value": [1.0, "v"],
        "name": ["churn", "churn-ep", "customer_activity", "junk", "clicks"],
        "new_name": ["renamed"],
        "run_name": ["a-run"],
        "version": [1],
        "alias": ["champion", "challenger"],
        "uri": ["models:/churn/1", "models:/churn@champion"],
        "model_uri": ["models:/churn/1"],
        "uri_or_name": ["churn", "models:/churn/1"],
        "model": ["churn", fitted],
        "path": ["notes.txt", "", "models"],
        "dst": [seed.root / "out", str(seed.root / "out")],
        "local_path": [seed.file],
        "local_dir": [seed.file.parent],
        "artifact_path": ["sub", None],
        "artifact_file": ["a.json", "b.yaml", "c.txt"],
        "text": ["hello"],
        "dictionary": [{"a": 1}],
        "data": [frame, "churn@1", frame[["x"]]],
        "dataset": ["churn@1"],
        "target": ["y"],
        "role": ["train", "eval"],
        "input_example": [frame[["x"]]],
        "request_id": [seed.request_id, seed.request_id[:12]],
        "to": ["Staging", "Production"],
        "policy": [{"staging": []}, None],
        "at": [0, datetime(2030, 1, 1, tzinfo=UTC)],
        "features": [["customer_activity:monthly_spend"], ["customer_profile:age"]],
        "entity_df": [entity_df],
        "timestamp_column": ["event_timestamp"],
        "view": ["customer_activity", "clicks", "customer_activity:v1"],
        "rows": [[{"customer_id": 1, "ts": END, "clicks": 3}]],
        "entity_rows": [[{"customer_id": 1}], entity_df[["customer_id"]]],
        "start": [datetime(2026, 1, 1, tzinfo=UTC), None],
        "end": [END],
        "views": [["customer_activity"], None],
        "sample": [5],
        "n": [5],
        "actor": ["bob", "fuzzer"],
        "type_name": ["mypkg.Transformer"],
        "reason": ["because"],
        "replicas": [2],
        "since_ms": [0],
        "status": ["FINISHED", "pending_approval"],
        "filter": ["metrics.acc > 0.1"],
        "order_by": ["metrics.acc DESC"],
        "max_results": [10],
        "metrics": [{"acc": 0.5}],
        "params": [{"p2": 2}],
        "tags": [{"t": "v"}],
        "step": [1],
        "timestamp": [0],
        "suite": [{"name": "s", "checks": [{"kind": "not_null", "column": "x"}]}],
        "description": ["d"],
        "repo": [DEFINITIONS],
        "share": [0.5],
        "window_seconds": [60],
    }


_text = st.text(
    alphabet=st.characters(codec=None, categories=["L", "N", "P", "Cc", "Cf", "Cs", "Zs"]),
    max_size=40,
)
_number = st.one_of(
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**400, float("nan"), float("inf")]),
)


#: Junk of every kind that needs no stores (the remote junk tests throw it too).
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    _number,
    _text,
    st.binary(max_size=20),
    st.lists(st.one_of(st.none(), _number, _text), max_size=4),
    st.dictionaries(_text, st.one_of(st.none(), _number, _text), max_size=3),
    st.just(object()),
)


def _junk(seed: Seed) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(_anything(seed)), JUNK)


# -- targets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    get: Callable[[], Callable[..., Any]]
    needs_run: bool = False


def _deprecated(obj: object) -> bool:
    """An old name kept for one release: it calls the new one, which is probed itself."""
    return hasattr(obj, "__deprecated__")


def _methods(cls: type) -> list[str]:
    return sorted(
        name
        for name, f in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and not _deprecated(f)
    )


def _service_classes() -> dict[str, type]:
    """The service classes, without building a runtime at collection time."""
    from milepost.governance.roles import RoleService
    from milepost.models.service import ModelService
    from milepost.monitoring.service import MonitorService
    from milepost.serving.service import DeploymentService

    return {
        "serving": DeploymentService,
        "roles": RoleService,
        "models": ModelService,
        "monitors": MonitorService,
    }


def _targets() -> Iterator[Target]:
    for name in milepost.__all__:
        obj = getattr(milepost, name)
        if inspect.isfunction(obj) and name not in SKIP:
            yield Target(f"milepost.{name}", lambda obj=obj: obj, needs_run=name in NEEDS_RUN)
    yield Target("milepost.ActiveRun", lambda: milepost.ActiveRun)
    for module in SUBPACKAGES:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) and not _deprecated(obj):
                yield Target(f"{module.__name__}.{name}", lambda obj=obj: obj)
    yield Target("milepost.Client", lambda: milepost.Client)
    for name in _methods(milepost.Client):
        yield Target(f"Client.{name}", lambda name=name: getattr(milepost.Client(), name))
    yield Target("FeatureStore", lambda: FeatureStore)
    for name in _methods(FeatureStore):
        yield Target(
            f"FeatureStore.{name}", lambda name=name: getattr(FeatureStore(DEFINITIONS), name)
        )
    for name in ("predict", "predict_proba", "prepare"):
        yield Target(
            f"LoadedModel.{name}",
            lambda name=name: getattr(milepost.load_model("models:/churn/1"), name),
        )
    classes = _service_classes()
    for attr, only in SERVICES.items():
        for name in _methods(classes[attr]):
            if only is None or name in only:
                yield Target(
                    f"get_runtime().{attr}.{name}",
                    lambda attr=attr, name=name: getattr(
                        getattr(milepost.get_runtime(), attr), name
                    ),
                )


TARGETS = sorted(_targets(), key=lambda t: t.name)


def _call(
    fn: Callable[..., Any], draw: Callable[[Any], Any], junk: Any, good: dict[str, list[Any]]
) -> None:
    sig = inspect.signature(fn)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            continue
        if p.kind == p.VAR_KEYWORD:
            for key in draw(st.lists(st.sampled_from(["object_type", "actor", "limit", "x"]))):
                kwargs[key] = draw(junk)
            continue
        if p.default is not p.empty and draw(st.integers(0, 2)) == 0:
            continue  # leave some optional parameters at their defaults
        if p.name in good and draw(st.integers(0, 2)) > 0:
            value = draw(st.sampled_from(good[p.name]))
        else:
            value = draw(junk)
        if p.kind == p.KEYWORD_ONLY:
            kwargs[p.name] = value
        else:
            args.append(value)
    fn(*args, **kwargs)


# -- the seeded store -------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store holding one of everything, built once and copied for each test."""
    root = tmp_path_factory.mktemp("junk-template")
    milepost.configure(home=root / ".milepost", user="fuzzer", metric_flush_interval=0.05)
    try:
        _SEED[:] = [_seed(root)]
    finally:
        milepost.reset()
    yield root


def _seed(root: Path) -> Seed:
    from sklearn.linear_model import LogisticRegression

    from milepost.demo.data import generate_customers

    frame = _frames()[0]
    milepost.data.register("churn", frame)
    milepost.data.register("customers", generate_customers(200, days=10))
    store = FeatureStore(DEFINITIONS)
    store.apply()
    store.materialize(None, END)
    (root / "files").mkdir()
    file = root / "files" / "notes.txt"
    file.write_text("notes")
    with milepost.start_run(experiment="junk") as run:
        milepost.log_metric("acc", 0.5)
        milepost.log_param("p", 1)
        milepost.set_tag("t", "v")
        milepost.log_artifact(file)
        milepost.log_model(
            LogisticRegression().fit(frame[["x"]], frame["y"]),
            name="churn",
            input_example=frame[["x"]],
        )
    client = milepost.Client()
    client.set_alias("churn", "champion", 1)
    client.promote("churn", 1, "Staging")
    client.set_promotion_policy("churn", {"production": [{"kind": "approval"}]})
    request = client.promote("churn", 1, "Production")
    milepost.get_runtime().serving.create("churn-ep", "churn", version=1)
    client.create_monitor("churn-ep", endpoint="churn-ep", schedule="every 5m")
    return Seed(run.run_id, run.experiment_id, request.request_id)


@pytest.fixture
def seeded(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seed]:
    """A private copy of the seeded store, configured as the process's runtime."""
    root = tmp_path / "junk"
    shutil.copytree(template, root)
    monkeypatch.chdir(root)
    milepost.configure(home=root / ".milepost", user="fuzzer", metric_flush_interval=0.05)
    seed = _SEED[0]
    yield Seed(seed.run_id, seed.experiment_id, seed.request_id, root)
    milepost.reset()


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_only_milepost_errors_escape(target: Target, seeded: Seed) -> None:
    junk = _junk(seeded)
    good = _good(seeded)
    fn = target.get()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def probe(data: st.DataObject) -> None:
        try:
            if target.needs_run:
                with milepost.start_run(experiment="junk"):
                    _call(fn, data.draw, junk, good)
            else:
                _call(fn, data.draw, junk, good)
        except MilepostError:
            pass
        except Exception as exc:
            raise AssertionError(f"{target.name} raised {type(exc).__name__}: {exc}") from exc
        finally:
            while milepost.active_run() is not None:
                milepost.end_run()

    probe()
