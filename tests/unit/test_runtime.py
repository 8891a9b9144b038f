"""The public Runtime, and the store context it shares with the module-level functions."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import pandas as pd
import pytest

import milepost
from milepost.data.api import data_service
from milepost.errors import InvalidInput
from milepost.features import Entity, FeatureStore, FeatureView, Field, PushSource
from milepost.features.api import feature_service
from milepost.tracking._active import active_run_id

if TYPE_CHECKING:
    from pathlib import Path


def test_an_opened_runtime_is_its_own_project(tmp_path: Path) -> None:
    process = milepost.configure(home=tmp_path / "process")
    with milepost.Runtime.open(home=tmp_path / "embedded") as rt:
        assert isinstance(rt, milepost.Runtime)
        assert rt is not process
        v = rt.data.register("numbers", pd.DataFrame({"x": [1, 2, 3]}))
        assert v.version == 1
        assert rt.data.get("numbers").version == 1
        # the process's project never saw it
        assert milepost.data.list_datasets() == []
        assert milepost.Client(runtime=rt).list_models() == []
    assert (tmp_path / "embedded").is_dir()


def test_module_level_functions_share_the_runtime_services(tmp_path: Path) -> None:
    rt = milepost.configure(home=tmp_path / "a")
    assert milepost.get_runtime() is rt
    assert data_service() is rt.data
    assert feature_service() is rt.features
    milepost.data.register("d", pd.DataFrame({"x": [1]}))
    assert [v.version for v in rt.data.versions("d")] == [1]
    assert milepost.data.list_versions("d") == rt.data.versions("d")

    # configure() swaps the context: the functions follow, the old services are closed
    rt2 = milepost.configure(home=tmp_path / "b")
    assert rt2 is not rt
    assert data_service() is rt2.data is not rt.data
    assert milepost.data.list_datasets() == []


def test_the_active_run_is_visible_to_capabilities_per_thread(tmp_path: Path) -> None:
    milepost.configure(home=tmp_path / "home")
    assert active_run_id() is None
    seen: list[str | None] = []
    with milepost.start_run() as run:
        assert active_run_id() == run.run_id
        worker = threading.Thread(target=lambda: seen.append(active_run_id()))
        worker.start()
        worker.join()
    assert seen == [None]
    assert active_run_id() is None


def test_a_runtime_feature_store_works_on_the_runtime_stores(tmp_path: Path) -> None:
    milepost.configure(home=tmp_path / "process")
    customer = Entity("customer", join_keys=["customer_id"])
    clicks = FeatureView(
        name="clicks",
        entity=customer,
        source=PushSource("clicks"),
        timestamp_field="ts",
        ttl=timedelta(hours=1),
        schema=[Field("clicks", "int")],
    )
    with milepost.Runtime.open(home=tmp_path / "embedded") as rt:
        fs = rt.feature_store([customer, clicks])
        assert [p.change for p in fs.apply()] == ["new"]
        assert [p.change for p in fs.plan()] == ["unchanged"]
        # the process's project has no such view
        assert [p.change for p in FeatureStore([customer, clicks]).plan()] == ["new"]
    with pytest.raises(InvalidInput, match="takes a StoreContext"):
        FeatureStore([customer, clicks], context="sqlite://")  # type: ignore[arg-type]


def test_a_runtime_takes_settings_or_a_context() -> None:
    with pytest.raises(InvalidInput, match="resolved settings or a store context"):
        milepost.Runtime()
    with pytest.raises(InvalidInput, match="StoreContext"):
        milepost.Runtime(context="sqlite://")  # type: ignore[arg-type]


def test_client_listings_are_list_star_and_old_names_still_work(tmp_path: Path) -> None:
    milepost.configure(home=tmp_path / "home")
    client = milepost.Client()
    with milepost.start_run():
        pass
    with pytest.warns(DeprecationWarning, match="Client.audit_events is now"):
        old = client.audit_events(action="run.start")
    assert old == client.list_audit_events(action="run.start")
    assert len(client.list_audit_events(action="run.start")) == 1
    with pytest.warns(DeprecationWarning, match="Client.promotion_requests is now"):
        assert client.promotion_requests() == client.list_promotion_requests() == []
    with pytest.raises(InvalidInput, match="list_audit_events has no filter 'actr'"):
        client.list_audit_events(actr="me")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_opens_its_own_connections_for_every_runtime(tmp_path: Path) -> None:
    """Pooled connections belong to the parent: after a fork, the child's pools are empty
    for the process's runtime and for a Runtime.open() one alike, and both still work."""
    milepost.configure(home=tmp_path / "default")
    with milepost.Runtime.open(home=tmp_path / "opened") as opened:
        runtimes = [milepost.get_runtime(), opened]
        for rt in runtimes:
            rt.tracking.create_experiment(f"e-{id(rt)}")  # a pooled connection now
            assert rt.db.engine.pool.checkedin() >= 1
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 0
            try:
                for i, rt in enumerate(runtimes):
                    if rt.db.engine.pool.checkedin() != 0:
                        code |= 1 << i
                    elif rt.tracking.get_experiment(f"e-{id(rt)}").name != f"e-{id(rt)}":
                        code |= 4 << i
            except BaseException:
                code = 64
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        for rt in runtimes:  # the parent's pools are untouched
            assert rt.db.engine.pool.checkedin() >= 1
