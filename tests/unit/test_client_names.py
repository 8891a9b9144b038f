"""The Client's vocabulary: listings are ``list_*``, single reads ``get_*``; the names
before it still answer for one release, with a DeprecationWarning naming the new one."""

from __future__ import annotations

from pathlib import Path

import pytest

from milepost import Client, Runtime

RENAMED = {
    "model_history": "get_model_history",
    "fairness_audits": "list_fairness_audits",
    "monitor_results": "list_monitor_results",
    "models_trained_on": "list_models_trained_on",
    "endpoint_status": "get_endpoint_status",
    "decision": "get_decision",
    "promotion_requests": "list_promotion_requests",
    "audit_events": "list_audit_events",
}

# return a list but are not listings: a query with a filter language, actions that
# return what they did, one object's history (``get_*_history``, as MLflow's)
NOT_LISTINGS = {
    "search_runs",
    "reap_stale_runs",
    "set_model_card_fields",
    "get_metric_history",
    "get_model_history",
}


def test_listings_are_list_and_single_reads_are_get() -> None:
    public = {n: f for n, f in vars(Client).items() if callable(f) and not n.startswith("_")}
    returns = {n: str(f.__annotations__.get("return", "")) for n, f in public.items()}
    listings = {n for n, r in returns.items() if r.startswith("list[")} - NOT_LISTINGS
    assert sorted(n for n in listings if not n.startswith("list_")) == []
    for old, new in RENAMED.items():
        assert new in public and getattr(public[old], "__doc__", "").startswith("Deprecated")


@pytest.mark.parametrize(("old", "new"), RENAMED.items())
def test_an_old_name_answers_and_names_the_new_one(
    tmp_path: Path, old: str, new: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Runtime.open(home=tmp_path / "home") as rt:
        client = Client(runtime=rt)
        calls: list[tuple[tuple[object, ...], dict[str, object]]] = []
        monkeypatch.setattr(
            client, new, lambda *a, **k: calls.append((a, k)) or "answer", raising=False
        )
        with pytest.warns(DeprecationWarning, match=f"Client.{old} is now Client.{new}"):
            assert getattr(client, old)("x", stage="Production") == "answer"
        assert calls == [(("x",), {"stage": "Production"})]
