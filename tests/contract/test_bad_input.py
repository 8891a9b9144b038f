"""Bad input on every metadata backend: a clear InvalidInput, and nothing changed.

The property test in ``tests/unit/test_junk_input.py`` throws junk at every entry point;
these are the cases named in the issue, each with what it must and must not leave behind.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import milepost
from milepost import Client, Runtime
from milepost.errors import InvalidInput, MilepostError
from milepost.features import Entity, FeatureStore, FeatureView, Field, PushSource
from milepost.stores.schema import experiments

FRAME = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
DUPLICATED = pd.DataFrame([[1.0, 0], [2.0, 1]], columns=["x", "x"])
END = datetime(2026, 1, 12, tzinfo=UTC)
customer = Entity("customer", join_keys=["customer_id"])
clicks = FeatureView(
    name="clicks",
    entity=customer,
    source=PushSource("clicks"),
    timestamp_field="ts",
    ttl=timedelta(days=1),
    schema=[Field("clicks", "int")],
)


@pytest.fixture
def seeded(runtime: Runtime, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A dataset, a run with an artifact, model churn v1 and an applied push view."""
    from sklearn.linear_model import LogisticRegression

    milepost.data.register("churn", FRAME)
    notes = tmp_path / "notes.txt"
    notes.write_text("notes")
    with milepost.start_run(experiment="bad-input") as run:
        milepost.log_artifact(notes, "sub")
        milepost.log_model(
            LogisticRegression().fit(FRAME[["x"]], FRAME["y"]),
            name="churn",
            input_example=FRAME[["x"]],
        )
    store = FeatureStore([customer, clicks])
    store.apply()
    yield {"run_id": run.run_id, "experiment_id": run.experiment_id, "store": store}


def _all_refused(calls: list[Callable[[], Any]] | dict[str, Callable[[], Any]], match: str) -> None:
    """Every call raises InvalidInput matching ``match``; a failure names the call."""
    named = calls if isinstance(calls, dict) else {str(i): c for i, c in enumerate(calls)}
    for name, call in named.items():
        try:
            call()
        except InvalidInput as exc:
            assert re.search(match, str(exc)), f"call {name}: {exc}"
        else:
            pytest.fail(f"call {name} was accepted")


# -- the store boundary ------------------------------------------------------------------


def test_driver_refusals_are_invalid_input_and_roll_back(runtime: Runtime) -> None:
    """Values the database driver cannot bind never escape as raw Python errors."""
    exp = Client().create_experiment("kept")
    store = runtime.tracking.store
    with (
        pytest.raises(InvalidInput, match="too large for the metadata database"),
        runtime.db.write() as conn,
    ):
        conn.execute(sa.update(experiments).values(description="changed"))
        conn.execute(sa.update(experiments).values(updated_at=2**70))
    with pytest.raises(InvalidInput, match="cannot be stored"):
        store.create_experiment("surrogate", description="bad\ud800", actor="tester")
    if runtime.db.dialect == "postgresql":
        with pytest.raises(InvalidInput, match="NUL"):
            store.create_experiment("nul", description="a\x00b", actor="tester")
    assert [e.name for e in Client().list_experiments()] == ["kept"]
    assert Client().get_experiment(exp.experiment_id).description is None


# -- the named cases -----------------------------------------------------------------------


def test_search_runs_with_a_float(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput, match=r"name \(str\) or id \(int\), got 3\.5"):
        Client().search_runs(3.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("ref", [None, 3, b"churn@1", ["churn@1"], FRAME])
def test_data_get_with_a_non_reference(seeded: dict[str, Any], ref: Any) -> None:
    with pytest.raises(InvalidInput, match=r"[Dd]ataset reference"):
        milepost.data.get(ref)


HUGE = [2**63, 10**30, -(2**63) - 1]


def _huge_calls(seeded: dict[str, Any], n: int) -> list[Callable[[], Any]]:
    c = Client()
    run_id = seeded["run_id"]
    rt = milepost.get_runtime()
    return [
        lambda: c.get_experiment(n),
        lambda: c.rename_experiment(n, "x"),
        lambda: c.get_model_version("churn", n),
        lambda: c.set_alias("churn", "champion", n),
        lambda: c.archive_model_version("churn", n),
        lambda: c.promote("churn", n, "Staging"),
        lambda: c.production_at("churn", n),
        lambda: c.log_metric(run_id, "m", 1.0, step=n),
        lambda: c.log_metric(run_id, "m", 1.0, timestamp=n),
        lambda: c.log_batch(run_id, metrics={"m": 1.0}, step=n),
        lambda: c.search_runs([n]),
        lambda: c.search_runs(max_results=n),
        lambda: c.list_audit_events(since_ms=n),
        lambda: c.list_audit_events(limit=n),
        lambda: c.verify_audit(expect_head=f"{n}:{'a' * 64}"),
        lambda: milepost.data.get(f"churn@{n}"),
        lambda: milepost.load_model(f"models:/churn/{n}"),
        lambda: seeded["store"].retire("clicks", n),
        lambda: seeded["store"].online_entities(f"clicks:v{n}"),
        lambda: rt.serving.create("ep", "churn", version=n),
        lambda: rt.serving.set_replicas("ep", n),
        lambda: rt.models.set_tags("churn", n, {"a": "b"}),
    ]


@pytest.mark.parametrize("n", HUGE)
def test_huge_integers_anywhere(seeded: dict[str, Any], n: int) -> None:
    before = Client().audit_head()
    _all_refused(_huge_calls(seeded, n), "integer|at most|from -?[0-9]+ to|out of range|valid|SEQ")
    milepost.flush()
    assert Client().audit_head() == before  # nothing was changed
    assert Client().get_metric_history(seeded["run_id"], "m") == []


SURROGATE = "bad\ud800"


def _surrogate_calls(seeded: dict[str, Any], tmp_path: Path) -> list[Callable[[], Any]]:
    c = Client()
    run_id = seeded["run_id"]
    return [
        lambda: c.create_experiment(SURROGATE),
        lambda: c.create_experiment("fine", description=SURROGATE),
        lambda: c.create_run("bad-input", run_name=SURROGATE),
        lambda: c.create_run("bad-input", tags={"t": SURROGATE}),
        lambda: c.log_param(run_id, "p", SURROGATE),
        lambda: c.set_tag(run_id, "t", SURROGATE),
        lambda: c.set_tag(run_id, SURROGATE, "v"),
        lambda: c.log_batch(run_id, params={"q": SURROGATE}),
        lambda: c.delete_experiment("bad-input", reason=SURROGATE),
        lambda: c.get_model(SURROGATE),
        lambda: c.set_alias("churn", SURROGATE, 1),
        lambda: c.archive_model_version("churn", 1, reason=SURROGATE),
        lambda: c.promote("churn", 1, "Staging", reason=SURROGATE),
        lambda: c.list_artifacts(run_id, SURROGATE),
        lambda: c.download_artifacts(run_id, "", tmp_path / SURROGATE),
        lambda: milepost.data.register(SURROGATE, FRAME),
        lambda: milepost.data.register("fine", FRAME, description=SURROGATE),
        lambda: milepost.data.register(
            "fine", FRAME.assign(s=pd.Series([SURROGATE] * 4, dtype=object))
        ),
        lambda: milepost.get_runtime().models.set_description("churn", SURROGATE),
        lambda: milepost.get_runtime().roles.grant(SURROGATE, "approver"),
        lambda: seeded["store"].push(
            "clicks", [{"customer_id": SURROGATE, "ts": END, "clicks": 1}]
        ),
        lambda: seeded["store"].get_online_features(
            ["clicks:clicks"], [{"customer_id": SURROGATE}]
        ),
    ]


def test_surrogates_in_names_and_values(seeded: dict[str, Any], tmp_path: Path) -> None:
    c = Client()
    before = (c.audit_head(), c.get_run(seeded["run_id"]), c.list_artifacts(seeded["run_id"]))
    _all_refused(_surrogate_calls(seeded, tmp_path), "surrogate")
    after = (c.audit_head(), c.get_run(seeded["run_id"]), c.list_artifacts(seeded["run_id"]))
    assert after == before
    assert [d.name for d in milepost.data.list_datasets()] == ["churn"]
    with milepost.start_run(experiment="bad-input") as run:
        for call in (
            lambda: milepost.log_param("p", SURROGATE),
            lambda: milepost.set_tag("t", SURROGATE),
            lambda: milepost.log_text(SURROGATE, "a.txt"),
            lambda: milepost.log_text("fine", f"{SURROGATE}.txt"),
            lambda: milepost.log_params({"q": SURROGATE}),
        ):
            with pytest.raises(InvalidInput, match="surrogate"):
                call()
    stored = c.get_run(run.run_id)
    assert (stored.params, c.list_artifacts(run.run_id)) == ({}, [])


def test_a_run_failing_with_unstorable_text_still_ends(runtime: Runtime) -> None:
    """The traceback a failed run stores may quote any text; the run still ends FAILED."""
    with pytest.raises(ValueError, match="payload"), milepost.start_run() as run:
        raise ValueError("payload bad\ud800 and a\x00b")
    ended = Client().get_run(run.run_id)
    assert ended.status == "FAILED"
    assert ended.error is not None and "\\ud800" in ended.error


def _duplicate_calls(seeded: dict[str, Any]) -> list[Callable[[], Any]]:
    model = milepost.load_model("models:/churn/1")
    store = seeded["store"]
    dup_rows = pd.DataFrame([[1, END, 3]], columns=["customer_id", "ts", "ts"])
    entity_df = pd.DataFrame([[1, END, END]], columns=["customer_id", "ts", "ts"])
    return [
        lambda: milepost.data.register("dups", DUPLICATED),
        lambda: milepost.data.register("dups", pd.DataFrame({0: [1], "0": [2]})),
        lambda: milepost.data.validate(
            DUPLICATED, {"name": "s", "checks": [{"kind": "not_null", "column": "x"}]}
        ),
        lambda: model.predict(DUPLICATED),
        lambda: model.predict_proba(DUPLICATED),
        lambda: milepost.evaluate("models:/churn/1", DUPLICATED, target="x"),
        lambda: store.push("clicks", dup_rows),
        lambda: store.get_historical_features(entity_df, ["clicks:clicks"], timestamp_column="ts"),
        lambda: store.get_online_features(
            ["clicks:clicks"], pd.DataFrame([[1, 1]], columns=["customer_id", "customer_id"])
        ),
    ]


def test_duplicate_column_names(seeded: dict[str, Any]) -> None:
    _all_refused(_duplicate_calls(seeded), "duplicate column names: '(x|0|ts|customer_id)'")
    with milepost.start_run(), pytest.raises(InvalidInput, match="not a DataFrame"):
        milepost.log_input(DUPLICATED)
    assert [d.name for d in milepost.data.list_datasets()] == ["churn"]


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_download_to_a_file_leaves_nothing(seeded: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("mine")
    before = _listing(tmp_path)
    with pytest.raises(InvalidInput, match="is a file, not a directory"):
        Client().download_artifacts(seeded["run_id"], "", target)
    with pytest.raises(InvalidInput, match="is a file, not a directory"):
        Client().download_artifacts(seeded["run_id"], "", target / "below")
    assert target.read_text() == "mine"
    assert _listing(tmp_path) == before


def test_download_with_a_file_in_the_way(seeded: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the artifact's directory goes")
    (out / "models").mkdir()
    before = _listing(tmp_path)
    with pytest.raises(InvalidInput, match=r"sub is a file, not a directory"):
        Client().download_artifacts(seeded["run_id"], "", out)
    assert _listing(tmp_path) == before  # checked before the first file was written
    (out / "sub").unlink()
    (out / "sub").mkdir()
    (out / "sub" / "notes.txt").mkdir()
    with pytest.raises(InvalidInput, match="is a directory"):
        Client().download_artifacts(seeded["run_id"], "sub", out)
    assert _listing(out) == {"models", "sub", "sub/notes.txt"}


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory Python hands out, private to this test."""
    path = tmp_path / "system-tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.mark.parametrize(
    "log",
    [
        lambda d: milepost.log_text("x", "a" * 256),
        lambda d: milepost.log_text("x", "é" * 128 + ".txt"),  # 260 bytes in UTF-8
        lambda d: milepost.log_text("x", "d/" * 600 + "f"),  # over 1024 characters
        lambda d: milepost.log_dict({"a": 1}, "b" * 300 + ".json"),
        lambda d: milepost.log_artifact(d / "f.txt", "c" * 256),
        lambda d: milepost.log_artifacts(d, "e" * 1100),
        lambda d: milepost.log_model(FRAME, name="m" * 256),
        lambda d: milepost.log_model(FRAME, name="m" + "é" * 128),
    ],
    ids=["text", "utf8-bytes", "total", "dict", "file", "directory", "model", "model-bytes"],
)
def test_very_long_artifact_names_are_refused_up_front(
    runtime: Runtime, tmp_path: Path, private_tmp: Path, log: Callable[[Path], Any]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_text("content")
    store = Path(runtime.blobs.uri)
    with milepost.start_run() as run:
        before = _listing(store)
        with pytest.raises(InvalidInput, match=r"long|bytes in UTF-8"):
            log(src)
        assert _listing(store) == before  # no blob, nothing in the store's tmp/
        assert os.listdir(private_tmp) == []
    assert Client().list_artifacts(run.run_id) == []


CONTROL = ["\x00", "\n", "\t", "\x1b", "\x7f", "\x85", "\u2028", "\u202e"]


def _named(seeded: dict[str, Any], bad: str) -> dict[str, Callable[[], Any]]:
    c = Client()
    run_id = seeded["run_id"]
    rt = milepost.get_runtime()
    return {
        "experiment": lambda: c.create_experiment(f"exp{bad}"),
        "experiment rename": lambda: c.rename_experiment("bad-input", f"exp{bad}"),
        "run name": lambda: c.create_run("bad-input", run_name=f"run{bad}"),
        "param key": lambda: c.log_param(run_id, f"p{bad}", 1),
        "metric key": lambda: c.log_metric(run_id, f"m{bad}", 1.0),
        "tag key": lambda: c.set_tag(run_id, f"t{bad}", "v"),
        "artifact path": lambda: rt.tracking.log_bytes(run_id, b"x", f"a{bad}.txt"),
        "dataset": lambda: milepost.data.register(f"ds{bad}", FRAME),
        "input role": lambda: rt.data.log_input(run_id, "churn@1", role=f"train{bad}"),
        "model": lambda: c.get_model(f"churn{bad}"),
        "alias": lambda: c.set_alias("churn", f"champion{bad}", 1),
        "entity": lambda: Entity(f"e{bad}", join_keys=["k"]),
        "join key": lambda: Entity("e", join_keys=[f"k{bad}"]),
        "feature view": lambda: FeatureView(
            name=f"v{bad}",
            entity=customer,
            source=PushSource("p"),
            timestamp_field="ts",
            ttl=timedelta(days=1),
            schema=[Field("f")],
        ),
        "field": lambda: Field(f"f{bad}"),
        "feature ref": lambda: seeded["store"].get_online_features(
            [f"clicks:clicks{bad}"], [{"customer_id": 1}]
        ),
        "endpoint": lambda: rt.serving.create(f"ep{bad}", "churn", version=1),
        "role": lambda: rt.roles.grant("bob", f"approver{bad}"),
        "actor": lambda: rt.roles.grant(f"bob{bad}", "approver"),
        "trusted type": lambda: rt.models.add_trusted_type(f"pkg.T{bad}", reason="r"),
        "suite": lambda: milepost.data.validate(
            FRAME, {"name": f"s{bad}", "checks": [{"kind": "not_null", "column": "x"}]}
        ),
        "gate": lambda: c.set_promotion_policy(
            "churn", {"staging": [{"kind": "approval", "name": f"g{bad}"}]}
        ),
    }


@pytest.mark.parametrize("bad", CONTROL, ids=[f"U+{ord(c):04X}" for c in CONTROL])
def test_control_characters_in_every_kind_of_name(seeded: dict[str, Any], bad: str) -> None:
    before = Client().audit_head()
    _all_refused(_named(seeded, bad), "")
    with milepost.start_run(), pytest.raises(InvalidInput):
        milepost.log_model(FRAME, name=f"churn{bad}")
    assert Client().audit_head() != before  # the run above, and only it
    assert [e.action for e in Client().list_audit_events(since_ms=0, limit=2)] == [
        "run.end",
        "run.start",
    ]


def test_suite_files_that_cannot_be_read(runtime: Runtime, tmp_path: Path) -> None:
    binary = tmp_path / "suite.yaml"
    binary.write_bytes(b"\xff\xfe\x00name: s")
    for suite, reason in (
        ("s" * 300 + ".yml", "File name too long"),
        (tmp_path, "not a file: it is a directory"),
        (tmp_path / "missing.yaml", "it is missing"),
        (binary, "Cannot read suite file"),
        ("bad\ud800.yml", "cannot be encoded"),
    ):
        with pytest.raises(InvalidInput, match=reason):
            milepost.data.validate(FRAME, suite)


def test_the_actor_setting_follows_the_name_rule(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(MilepostError, match="control character"):
        milepost.configure(home=tmp_path / "other", user="eve\x1b[2J")


def test_production_at_none(seeded: dict[str, Any]) -> None:
    for at in (None, "yesterday", datetime(2026, 1, 1), 2**70):
        with pytest.raises(InvalidInput, match="at "):
            Client().production_at("churn", at)  # type: ignore[arg-type]
    assert Client().production_at("churn", datetime.now(UTC)) is None


def test_materialize_with_garbage_times(seeded: dict[str, Any]) -> None:
    store = seeded["store"]
    with pytest.raises(InvalidInput, match="start must be a datetime"):
        store.materialize(start="garbage", end=END)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="end must be a datetime"):
        store.materialize(None, "2026-01-01")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="out of range"):
        store.materialize(None, datetime.max.replace(tzinfo=UTC))
    with pytest.raises(InvalidInput, match="end must be a datetime"):
        store.materialize_incremental(end=0)  # type: ignore[arg-type]
    assert store.online_status()[0].describe().startswith("never")


def test_verify_audit_with_a_bytes_anchor(runtime: Runtime) -> None:
    head = Client().audit_head()
    for bad in (b"1:" + b"a" * 64, head.encode(), ["x"]):
        with pytest.raises(InvalidInput, match="not text"):
            Client().verify_audit(anchor=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="not text"):
            Client().verify_audit(expect_head=bad, anchor=head)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="neither SEQ:HASH"):
        Client().verify_audit(anchor="²:" + "a" * 64)


def test_a_request_id_prefix_must_be_hex(seeded: dict[str, Any]) -> None:
    """'' and '_' once matched every request (LIKE wildcards) and decided the only one."""
    c = Client()
    milepost.get_runtime().roles.grant("tester", "approver")
    c.set_promotion_policy("churn", {"staging": [{"kind": "approval"}]})
    request = c.promote("churn", 1, "Staging")
    for prefix in ("", "_", "__", "%", " ", request.request_id[:3], request.request_id + "0"):
        with pytest.raises(InvalidInput, match="Promotion request id"):
            c.reject(prefix, reason="junk")
        with pytest.raises(InvalidInput, match="Promotion request id"):
            c.approve(prefix)
    assert c.list_promotion_requests()[0].status == "pending_approval"
    assert c.list_promotion_requests()[0].request_id == request.request_id
    rejected = c.reject(request.request_id[:12].upper(), reason="by prefix")
    assert rejected.status == "rejected"
