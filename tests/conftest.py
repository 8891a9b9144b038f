"""Shared fixtures: a clean environment per test, and the real services.

Service tests carry a marker (``postgres``, ``s3``, ``redis``). When the service is not
reachable they are skipped with a message saying how to run them, except under
``CI=true``, where they fail: CI must exercise every backend. Optional libraries
(``optional_import``) follow the same rule: skipped locally, required in CI.

Tests marked ``slow`` (real server processes under load, many processes) are deselected
in a local run; ``--run-slow``, ``-m slow`` (any expression naming it), or ``CI=true``
runs them.
"""

from __future__ import annotations

import importlib
import os
import socket
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

import milepost
from milepost.demo.data import CATEGORICAL, LABEL, NUMERIC, generate_customers

POSTGRES_URI = os.environ.get(
    "MILEPOST_TEST_POSTGRES_URI", "postgresql+psycopg://127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MILEPOST_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_HOW_TO = {
    "postgres": "start PostgreSQL on 127.0.0.1:5432 (database 'test', trust auth) or set "
    "MILEPOST_TEST_POSTGRES_URI",
    "s3": "install moto[server] (pip install -e '.[dev]')",
    "redis": "start Redis on 127.0.0.1:6379 or set MILEPOST_TEST_REDIS_URL",
}


def _postgres_available() -> str | None:
    try:
        import psycopg
        import sqlalchemy as sa

        url = sa.engine.make_url(POSTGRES_URI)
        with psycopg.connect(
            host=url.host,
            port=url.port or 5432,
            dbname=url.database,
            user=url.username,
            password=url.password,
            connect_timeout=3,
        ):
            return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _s3_available() -> str | None:
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ModuleNotFoundError as exc:
        return str(exc)
    return None


def _redis_available() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


_PROBES = {"postgres": _postgres_available, "s3": _s3_available, "redis": _redis_available}
_probe_results: dict[str, str | None] = {}


def service_problem(name: str) -> str | None:
    """Why the service is unavailable, or None (probed once per session)."""
    if name not in _probe_results:
        _probe_results[name] = _PROBES[name]()
    return _probe_results[name]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run the tests marked slow (always run when CI=true)",
    )


def _runs_slow(config: pytest.Config) -> bool:
    """CI runs everything; locally, slow tests run on request (--run-slow, or a -m
    expression that names ``slow``, which then selects on its own)."""
    return IN_CI or bool(config.getoption("--run-slow")) or "slow" in config.option.markexpr


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _runs_slow(config):
        slow = [item for item in items if item.get_closest_marker("slow") is not None]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if item.get_closest_marker("slow") is None]
    for item in items:
        for name in _PROBES:
            if item.get_closest_marker(name) is None:
                continue
            problem = service_problem(name)
            if problem and not IN_CI:
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"{name} unavailable ({problem}); to run: {_HOW_TO[name]}"
                    )
                )


def pytest_report_header(config: pytest.Config) -> str | None:
    if _runs_slow(config):
        return None
    return "slow tests deselected (run them with --run-slow, or CI=true as CI does)"


def require(name: str) -> None:
    """Fail loudly in CI when a marked service is missing."""
    problem = service_problem(name)
    if problem:
        pytest.fail(f"{name} is required when CI=true but unavailable: {problem}")


def optional_import(name: str, *, extra: str) -> ModuleType:
    """Import an optional library: skip the test (or module) without it, fail in CI.

    ``extra`` names the ``pip install -e '.[extra]'`` that brings it. Call it at module
    level to skip a whole module, or inside a test or fixture.
    """
    how = f"pip install -e '.[{extra}]'"
    # a library's own import-time deprecation warnings (shap's matplotlib colours) are
    # not the test's business; the code under test imports them the same way
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not IN_CI:
            return pytest.importorskip(name, reason=f"{name} is not installed; to run: {how}")
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            pytest.fail(
                f"{name} is required when CI=true but cannot be imported ({exc}); {how}",
                pytrace=False,
            )


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No MILEPOST_* settings leak in; every test runs in its own directory."""
    for key in list(os.environ):
        if key.startswith("MILEPOST_") and not key.startswith("MILEPOST_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield
    milepost.reset()


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    """A metadata URI on PostgreSQL pointing at a fresh schema, dropped afterwards."""
    require("postgres")
    import sqlalchemy as sa

    schema = f"mp_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URI, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URI else "?"
    try:
        yield f"{POSTGRES_URI}{sep}options=-csearch_path%3D{schema}"
    finally:
        milepost.reset()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def metadata_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The metadata URI of each backend in turn (add a backend to BACKENDS)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_schema"))
    return f"sqlite:///{tmp_path / 'meta.db'}"


@pytest.fixture
def runtime(metadata_uri: str, tmp_path: Path) -> Iterator[milepost.Runtime]:
    """A configured runtime on each backend, with fast background flushes."""
    rt = milepost.configure(
        home=tmp_path / "home",
        metadata_uri=metadata_uri,
        metric_flush_interval=0.05,
        user="tester",
    )
    yield rt
    milepost.reset()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis URL with a key prefix of its own; the keys are deleted afterwards."""
    require("redis")
    import redis

    prefix = f"mptest-{uuid.uuid4().hex[:10]}"
    yield f"{REDIS_URL}?prefix={prefix}"
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, Any]]:
    """A moto S3 server on 127.0.0.1 with a bucket named ``milepost``."""
    require("s3")
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    creds = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    old = {k: os.environ.get(k) for k in creds}
    os.environ.update(creds)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="milepost")
    try:
        yield {"endpoint_url": endpoint, "bucket": "milepost"}
    finally:
        server.stop()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- models trained once per session for the registry, promotion and serving suites -----

FEATURES = NUMERIC + CATEGORICAL


@pytest.fixture(scope="session")
def churn_frame() -> pd.DataFrame:
    return generate_customers(3000, seed=21)


@pytest.fixture(scope="session")
def churn_models(churn_frame: pd.DataFrame) -> dict[str, Any]:
    """A know-nothing model (ROC AUC 0.5) and a real one, on the same training rows."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from milepost.demo.training import preprocess as _preprocess

    train = churn_frame.iloc[:2000]
    weak = Pipeline([("prep", _preprocess(True)), ("model", DummyClassifier(strategy="prior"))])
    good = Pipeline(
        [("prep", _preprocess(True)), ("model", LogisticRegression(C=1.0, max_iter=500))]
    )
    return {
        "weak": weak.fit(train[FEATURES], train[LABEL]),
        "good": good.fit(train[FEATURES], train[LABEL]),
    }
