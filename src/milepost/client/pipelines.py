"""Pipelines and triggers over HTTP: :class:`RemotePipelines` and
:class:`RemoteTriggers` stand in for ``rt.pipelines`` and ``rt.triggers``.

Same methods, records (:class:`~milepost.pipelines.models.PipelineRun`,
:class:`~milepost.pipelines.triggers.Trigger`, ...) and exceptions. A pipeline run
remotely runs on the server, which loads only pipelines installed there (see
:mod:`milepost.server.api.routes.pipelines`): a :class:`~milepost.pipelines.Pipeline`
is sent as its ``module:attr`` reference. ``run`` waits for the run's end (no request
timeout); ``on_event`` is called once per step with its final status when it returns.
A remote run's step values stay on the server: ``PipelineRun.outputs`` works only in
embedded mode.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost._records import record_from_dict
from milepost.client._ops_wire import body, seg
from milepost.client._transport import Transport
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable, Mapping

    from milepost.client._runtime import RemoteRuntime
    from milepost.pipelines.dag import Pipeline
    from milepost.pipelines.models import PipelineRun, PipelineSummary
    from milepost.pipelines.scheduler import Lease
    from milepost.pipelines.triggers import Firing, Launcher, Trigger

__all__ = ["RemotePipelines", "RemoteTriggers"]


def _host_only(what: str) -> InvalidInput:
    return InvalidInput(
        f"{what} runs on the server's host, not over HTTP (MILEPOST_URL is set).",
        hint="Run it (e.g. `milepost scheduler`) where the metadata store is, without "
        "MILEPOST_URL.",
    )


def _run(data: Any) -> PipelineRun:
    from milepost.pipelines.models import PipelineRun

    return record_from_dict(PipelineRun, data)


def _replay(run: PipelineRun, on_event: Callable[[str, str, dict[str, Any]], None] | None) -> None:
    """Tell ``on_event`` how each step ended (the events themselves happened remotely)."""
    if on_event is None:
        return
    for s in run.steps:
        on_event(s.step, s.status, {"attempts": s.attempts, "error": s.error, "remote": True})


class RemotePipelines:
    """``rt.pipelines`` in remote mode (see the module docstring)."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self._runtime = runtime
        self._http = runtime.transport

    def _long(self) -> Transport:
        """A connection without a request timeout, for calls that last a whole run."""
        token = self._runtime.settings.token
        secret = token.get_secret_value() if token is not None else None
        return Transport(self._http.url, secret, timeout=None)  # type: ignore[arg-type]

    def _post_run(self, path: str, payload: dict[str, Any]) -> PipelineRun:
        http = self._long()
        try:
            return _run(http.request("POST", path, json=payload))
        finally:
            http.close()

    def run(
        self,
        pipeline: Pipeline | str,
        params: Mapping[str, Any] | None = None,
        *,
        runner: str = "local",
        address: str | None = None,
        max_workers: int | None = None,
        cache: bool = True,
        run_id: str | None = None,
        trigger: str | None = None,
        on_event: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> PipelineRun:
        """Run a pipeline on the server to the end (see :meth:`PipelineService.run`)."""
        from milepost.pipelines.dag import Pipeline

        ref = pipeline.ref if isinstance(pipeline, Pipeline) else pipeline
        if not isinstance(ref, str):
            raise InvalidInput(
                f"A pipeline is a Pipeline or its 'package.module:attr' reference, got "
                f"{check.short_repr(pipeline)}.",
            )
        if address is not None:
            raise InvalidInput(
                "A Dask address is not taken over HTTP: the server uses its own setting.",
                hint="Leave address out, or run the pipeline without MILEPOST_URL.",
            )
        if trigger is not None:
            raise _host_only("A trigger's firing")
        if params is not None:
            check.mapping(params, "params")
        payload = body(
            pipeline=ref,
            params=None if params is None else dict(params),
            runner=runner,
            max_workers=max_workers,
            cache=cache,
            run_id=run_id,
        )
        run = self._post_run("/pipelines/runs", payload)
        _replay(run, on_event)
        return run

    def resume(
        self,
        run_id: str,
        *,
        runner: str | None = None,
        address: str | None = None,
        max_workers: int | None = None,
        on_event: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> PipelineRun:
        """Run a failed run again on the server, reusing its succeeded steps."""
        if address is not None:
            raise InvalidInput(
                "A Dask address is not taken over HTTP: the server uses its own setting."
            )
        path = f"/pipelines/runs/{seg(run_id, 'Pipeline run id')}/resume"
        run = self._post_run(path, body(runner=runner, max_workers=max_workers))
        _replay(run, on_event)
        return run

    def get_run(self, run_id: str) -> PipelineRun:
        """A pipeline run with its steps."""
        return _run(self._http.request("GET", f"/pipelines/runs/{seg(run_id, 'Pipeline run id')}"))

    def list_runs(
        self, pipeline: str | None = None, *, status: str | None = None, limit: int = 50
    ) -> builtins.list[PipelineRun]:
        """Pipeline runs, newest first."""
        check.integer(limit, "limit", minimum=1)
        params = {
            "pipeline": None if pipeline is None else check.string(pipeline, "Pipeline"),
            "status": None if status is None else check.string(status, "Status"),
            "limit": limit,
        }
        answer = self._http.request("GET", "/pipelines/runs", params=params)
        return [_run(r) for r in answer["items"]]

    def list_pipelines(self) -> builtins.list[PipelineSummary]:
        """Every pipeline that has run."""
        from milepost.pipelines.models import PipelineSummary

        answer = self._http.request("GET", "/pipelines")
        return [record_from_dict(PipelineSummary, p) for p in answer["items"]]

    def logs(self, run_id: str, step: str) -> str:
        """What a step printed and logged."""
        path = f"/pipelines/runs/{seg(run_id, 'Pipeline run id')}/steps/{seg(step, 'Step')}/logs"
        response = self._http.send("GET", path)
        return response.text

    def outputs(self, run_id: str, step: str) -> Any:
        """Not over HTTP: a step's values stay in the server's artifact store."""
        raise InvalidInput(
            "A remote pipeline run's step outputs are not loaded over HTTP.",
            hint="Read them where the artifact store is (without MILEPOST_URL), or have the "
            "step log what you need as run artifacts.",
        )

    def producers(self, kind: str, ref: str) -> builtins.list[tuple[str, str, str]]:
        """Not over HTTP: use the lineage graph (``milepost lineage``)."""
        raise _host_only("pipelines.producers")

    def reap_stale(self, now: int | None = None) -> builtins.list[PipelineRun]:
        """Not over HTTP: the scheduler reaps on the server's host."""
        raise _host_only("pipelines.reap_stale")


def _trigger(data: Any) -> Trigger:
    from milepost.pipelines.triggers import Trigger

    # trigger_id stays in the store (to_dict leaves it out)
    return record_from_dict(Trigger, {**data, "trigger_id": 0})


def _firing(data: Any) -> Firing:
    from milepost.pipelines.triggers import Firing

    return record_from_dict(Firing, data)


class RemoteTriggers:
    """``rt.triggers`` in remote mode. A firing launches its pipeline in a process of its
    own on the server; the scheduler runs on the server's host."""

    clock = staticmethod(time.time)

    def __init__(self, runtime: RemoteRuntime) -> None:
        self._http = runtime.transport

    def _path(self, name: Any, *rest: str) -> str:
        return "/".join(("/triggers", seg(name, "Trigger name"), *rest))

    def add(
        self,
        name: str,
        pipeline: str,
        *,
        params: Mapping[str, Any] | None = None,
        schedule: str | None = None,
        on_drift: str | None = None,
        on_performance: str | None = None,
        on_data: str | None = None,
        min_rows: int | None = None,
        enabled: bool = True,
    ) -> Trigger:
        """Add a trigger (see :meth:`TriggerService.add`)."""
        if params is not None:
            check.mapping(params, "params")
        payload = body(
            name=name,
            pipeline=pipeline,
            params=None if params is None else dict(params),
            schedule=schedule,
            on_drift=on_drift,
            on_performance=on_performance,
            on_data=on_data,
            min_rows=min_rows,
            enabled=enabled,
        )
        return _trigger(self._http.request("POST", "/triggers", json=payload))

    def get(self, name: str) -> Trigger:
        """One trigger by name."""
        return _trigger(self._http.request("GET", self._path(name)))

    def list(self) -> builtins.list[Trigger]:
        """Every trigger, by name."""
        return [_trigger(t) for t in self._http.request("GET", "/triggers")["items"]]

    def remove(self, name: str, *, reason: str | None = None) -> None:
        """Delete a trigger and its firings (audited)."""
        if reason is not None:
            check.text(reason, "Reason")
        self._http.request("DELETE", self._path(name), params={"reason": reason})

    def enable(self, name: str) -> Trigger:
        """Evaluate the trigger again, from now on."""
        return _trigger(self._http.request("POST", self._path(name, "enable")))

    def disable(self, name: str) -> Trigger:
        """Stop evaluating the trigger."""
        return _trigger(self._http.request("POST", self._path(name, "disable")))

    def fire(
        self, name: str, *, reason: str | None = None, launcher: Launcher | str | None = None
    ) -> Firing:
        """Fire by hand; the server launches the pipeline in a process of its own."""
        if launcher not in (None, "subprocess"):
            raise InvalidInput(
                f"Over HTTP a firing launches its pipeline on the server, in a process of its "
                f"own; launcher {check.short_repr(launcher)} is not available.",
                hint="Leave launch at 'subprocess', or fire it without MILEPOST_URL to run "
                "the pipeline here ('inline').",
            )
        path = self._path(name, "fire")
        return _firing(self._http.request("POST", path, json=body(reason=reason)))

    def firings(self, name: str | None = None, *, limit: int = 50) -> builtins.list[Firing]:
        """Firings, newest first, with their pipeline run's status."""
        check.integer(limit, "limit", minimum=1)
        params = {
            "trigger": None if name is None else check.string(name, "Trigger name"),
            "limit": limit,
        }
        answer = self._http.request("GET", "/firings", params=params)
        return [_firing(f) for f in answer["items"]]

    def get_firing(self, firing_id: str) -> Firing:
        """One firing."""
        return _firing(self._http.request("GET", f"/firings/{seg(firing_id, 'Firing id')}"))

    def lease(self) -> Lease | None:
        """Who holds the scheduler's lease on the server's store (None: no scheduler
        ever ran there)."""
        from milepost.pipelines.scheduler import Lease

        answer = self._http.request("GET", "/scheduler/lease")
        return None if answer is None else record_from_dict(Lease, answer)

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        """Not over HTTP: the scheduler evaluates triggers on the server's host."""
        raise _host_only("triggers.evaluate")

    def record(self, *args: Any, **kwargs: Any) -> Any:
        """Not over HTTP: the scheduler records firings on the server's host."""
        raise _host_only("triggers.record")

    def launch(self, *args: Any, **kwargs: Any) -> Any:
        """Not over HTTP: the scheduler launches firings on the server's host."""
        raise _host_only("triggers.launch")

    def expire_pending(self, *args: Any, **kwargs: Any) -> Any:
        """Not over HTTP: the scheduler expires firings on the server's host."""
        raise _host_only("triggers.expire_pending")
