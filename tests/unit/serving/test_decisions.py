"""Decision records: a consequential endpoint logs each answer with its explanation, and a
decision is read back by request id from the log alone (the engine as a replica runs it,
on SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import milepost
from milepost import Runtime
from milepost.errors import InvalidInput, MilepostError, NotFound, http_status
from milepost.serving.decisions import TOP_CONTRIBUTIONS, compact_explanation
from milepost.serving.engine import EndpointEngine
from milepost.serving.logger import PredictionLogger

pytest.importorskip("shap")

WIDE = [f"f{i}" for i in range(TOP_CONTRIBUTIONS + 3)]  # more inputs than records keep


def _wide_frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, len(WIDE))), columns=WIDE)
    y = pd.Series((x.to_numpy() @ np.linspace(-1, 1, len(WIDE)) > 0).astype(int))
    return x, y


def _log(model: Any, example: pd.DataFrame | None, *, onnx: bool = False, **kw: Any) -> int:
    with milepost.start_run(experiment="decisions"):
        mv = milepost.log_model(model, "credit", input_example=example, onnx=onnx, **kw)
    return mv.version


class Endpoint:
    """An engine over a real endpoint with its prediction log, as a replica runs it."""

    def __init__(self, rt: Runtime, name: str, version: int, **create: Any) -> None:
        self.rt = rt
        self.name = name
        rt.serving.create(name, "credit", version=version, **create)
        self.logger = PredictionLogger(
            name, rt.settings.home / "predictions", rt.serving.store, interval=3600
        )
        self.engine = EndpointEngine(
            name,
            store=rt.serving.store,
            models=rt.models,
            features=rt.features,
            logger=self.logger,
        )

    def predict(self, rows: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        reply = self.engine.predict(orjson.dumps({"rows": rows}), **kw)
        assert reply.status == 200
        out: dict[str, Any] = orjson.loads(reply.body)
        return out

    def close(self) -> None:
        self.engine.close()  # waits for shadows and flushes the log


@pytest.fixture
def rt(runtime: Runtime) -> Iterator[Runtime]:
    yield runtime


@pytest.fixture
def wide_model() -> tuple[LogisticRegression, pd.DataFrame]:
    x, y = _wide_frame()
    return LogisticRegression(max_iter=500).fit(x, y), x


def _adds_up(explanation: dict[str, Any]) -> float:
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    return float(total + explanation["other"])


@pytest.mark.parametrize("onnx", [False, True], ids=["native", "onnx"])
def test_a_decision_reads_back_with_contributions_that_add_up_without_the_model(
    rt: Runtime, wide_model: tuple[LogisticRegression, pd.DataFrame], onnx: bool
) -> None:
    """Each answered row is logged with its top contributions and the rest as "other";
    the record is read back from the log after the model files are gone (ONNX fast path
    included)."""
    if onnx:
        pytest.importorskip("skl2onnx")
    model, x = wide_model
    ep = Endpoint(rt, "credit-ep", _log(model, x.head(5), onnx=onnx), consequential=True)
    assert ep.engine.state.spec.consequential
    rows = x.iloc[10:12].to_dict("records")
    answer = ep.predict(rows)
    ep.close()
    shutil.rmtree(rt.settings.home / "artifacts")  # no model left to load

    for i in range(2):
        record = rt.serving.decision(answer["request_id"], row=i)
        assert (record.endpoint, record.model, record.version) == ("credit-ep", "credit", 1)
        assert (record.row, record.rows, record.status) == (i, 2, "ok")
        assert record.prediction == answer["predictions"][i]
        assert record.probabilities is not None
        assert record.probabilities["p"] == pytest.approx(answer["probabilities"][i])
        assert record.features == pytest.approx(rows[i])
        e = record.explanation
        assert e is not None
        assert e["features"] == len(WIDE) and e["other_features"] == len(WIDE) - TOP_CONTRIBUTIONS
        assert len(e["contributions"]) == TOP_CONTRIBUTIONS
        magnitudes = [abs(v) for v in e["contributions"].values()]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert _adds_up(e) == pytest.approx(e["output"], abs=1e-6)
        assert e["output_space"] == "log-odds" and e["explained_class"] == 1
        # the output is the model's own log-odds of the positive class
        p1 = answer["probabilities"][i][1]
        assert e["output"] == pytest.approx(np.log(p1 / (1 - p1)), abs=1e-4)
        assert record.to_dict()["uri"] == "models:/credit/1"


def test_the_top_contributions_keep_the_largest_and_sum_the_rest() -> None:
    explained = {
        "base_value": 0.5,
        "output": 0.5 + 3 - 2 + 0.25 + 0.125,
        "output_space": "prediction",
        "contributions": {"a": 0.25, "b": 3.0, "c": -2.0, "d": 0.125},
    }
    record = compact_explanation(explained, top=2)
    assert list(record["contributions"]) == ["b", "c"]
    assert record["other"] == pytest.approx(0.375) and record["other_features"] == 2
    assert _adds_up(record) == pytest.approx(explained["output"])
    assert compact_explanation(explained, top=10)["other"] == 0.0


def test_an_endpoint_that_is_not_consequential_keeps_no_decision_records(
    rt: Runtime, wide_model: tuple[LogisticRegression, pd.DataFrame]
) -> None:
    model, x = wide_model
    ep = Endpoint(rt, "plain", _log(model, x.head(5)))
    answer = ep.predict(x.head(1).to_dict("records"))
    ep.close()
    with pytest.raises(NotFound, match="keeps no decision records: it is not marked") as caught:
        rt.serving.decision(answer["request_id"])
    assert "--consequential" in (caught.value.hint or "")
    with pytest.raises(NotFound, match="keeps no decision records"):
        rt.serving.decisions("plain")
    with pytest.raises(NotFound, match="No endpoint logged a prediction"):
        rt.serving.decision("0190a0b0c0d07000800000000000abcd")
    with pytest.raises(NotFound, match="No endpoint logged a prediction"):
        rt.serving.decision("not-a-request-id")


def test_marking_checks_the_variants_can_be_explained_and_is_audited(
    rt: Runtime, wide_model: tuple[LogisticRegression, pd.DataFrame]
) -> None:
    """A version with no background to explain against is refused, naming it; an
    explainable one is marked (an audited change), and answers from then on are records."""
    model, x = wide_model
    from milepost.models.signature import infer_signature

    bare = _log(model, None, signature=infer_signature(x.head(5)))  # no example, no data
    good = _log(model, x.head(5))
    rt.serving.create("bare", "credit", version=bare)
    with pytest.raises(InvalidInput, match=r"models:/credit/1 cannot be explained") as caught:
        rt.serving.set_consequential("bare", True)
    assert "no background to explain against" in caught.value.message
    assert not rt.serving.get("bare")[0].consequential
    with pytest.raises(InvalidInput, match="cannot be explained"):
        rt.serving.create("bare2", "credit", version=bare, consequential=True)
    with pytest.raises(InvalidInput, match="without logging its predictions"):
        rt.serving.create(
            "nolog", "credit", version=good, consequential=True, log_predictions=False
        )

    ep = Endpoint(rt, "later", good)
    before = ep.predict(x.head(1).to_dict("records"))["request_id"]
    spec = rt.serving.set_consequential("later", True, reason="credit decisions")
    assert spec.consequential and rt.serving.status("later")["consequential"] is True
    ep.engine.state = ep.engine._build(*rt.serving.get("later"))  # the replica's refresh
    after = ep.predict(x.head(1).to_dict("records"))["request_id"]
    ep.close()
    with pytest.raises(NotFound, match="before it was marked consequential"):
        rt.serving.decision(before)
    assert rt.serving.decision(after).explanation is not None
    assert [d.request_id for d in rt.serving.decisions("later")] == [after]
    # through the Client: unmark and mark again (each an audited change)
    client = milepost.Client()
    assert not client.update_endpoint("later", consequential=False).consequential
    assert client.update_endpoint("later", consequential=True).consequential
    with pytest.raises(InvalidInput, match="Nothing to update"):
        client.update_endpoint("later")
    assert client.list_decisions("later", since_ms=0)[0].request_id == after
    # a version a rollout brings in must be explainable too
    with pytest.raises(InvalidInput, match="cannot be explained"):
        rt.serving.canary("later", bare)
    events = milepost.Client().list_audit_events(
        object_id="later", action="deploy.consequential.mark"
    )
    assert [e.reason for e in events] == [None, "credit decisions"]
    assert milepost.Client().verify_audit().ok


def test_a_decision_whose_explanation_fails_is_the_variants_error(
    rt: Runtime, wide_model: tuple[LogisticRegression, pd.DataFrame]
) -> None:
    """Fail closed: no answer goes out without its record."""
    model, x = wide_model
    ep = Endpoint(rt, "strict", _log(model, x.head(5)), consequential=True)
    runtime = next(iter(ep.engine.state.variants.values()))

    def broken(frame: pd.DataFrame) -> list[dict[str, Any]]:
        raise RuntimeError("explainer crashed")

    runtime._explainer = broken
    with pytest.raises(MilepostError, match=r"explanation.*failed.*explainer crashed") as caught:
        ep.predict(x.head(1).to_dict("records"))
    assert caught.value.code == "model_error" and http_status(caught.value) == 500
    ep.close()
    logged = pd.concat([pd.read_parquet(p) for p in rt.serving.store.segments("strict")])
    assert logged["status"].tolist() == ["error"] and logged["explanation"].isna().all()


def test_a_shadows_answers_are_not_decisions(
    rt: Runtime, wide_model: tuple[LogisticRegression, pd.DataFrame]
) -> None:
    model, x = wide_model
    v1 = _log(model, x.head(5))
    v2 = _log(LogisticRegression(C=0.01, max_iter=500).fit(x, _wide_frame()[1]), x.head(5))
    ep = Endpoint(rt, "shadowed", v1, consequential=True)
    rt.serving.shadow("shadowed", v2)
    ep.engine.state = ep.engine._build(*rt.serving.get("shadowed"))
    answer = ep.predict(x.head(1).to_dict("records"))
    ep.close()
    logged = pd.concat([pd.read_parquet(p) for p in rt.serving.store.segments("shadowed")])
    by_role = logged.set_index("role")["explanation"]
    assert isinstance(by_role["primary"], str) and pd.isna(by_role["shadow"])
    assert rt.serving.decision(answer["request_id"]).variant == f"credit-v{v1}"
