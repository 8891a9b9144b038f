"""Endpoints over HTTP: :class:`RemoteDeployments` stands in for ``rt.serving``.

Same methods, arguments, records (:class:`~milepost.serving.spec.EndpointSpec`,
:class:`~milepost.serving.decisions.DecisionRecord`, ...) and exceptions as
:class:`milepost.serving.DeploymentService`, made by calls to ``/api/v1/endpoints``.
What only a serving host does (the canary controller's ``tick``, the supervisors'
rolling steps, reading the prediction log's store) is not offered remotely: run
``milepost endpoints serve`` where the metadata store is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost._records import record_from_dict
from milepost.client._ops_wire import body, ms, seg
from milepost.errors import InvalidInput

if TYPE_CHECKING:
    from datetime import datetime

    from milepost.client._runtime import RemoteRuntime
    from milepost.serving.decisions import DecisionRecord, PruneReport
    from milepost.serving.spec import CanaryPolicy, EndpointSpec

__all__ = ["RemoteDeployments"]

#: What a serving host does with the store itself; not over HTTP.
_HOST_ONLY = frozenset(
    {"tick", "complete_rolling", "fail_rolling", "record", "stats", "store", "registry"}
)


def _spec(data: Any) -> EndpointSpec:
    from milepost.serving.spec import EndpointSpec

    return EndpointSpec.model_validate(data)


class RemoteDeployments:
    """``rt.serving`` in remote mode (see the module docstring)."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self._http = runtime.transport

    def __getattr__(self, name: str) -> Any:
        if name in _HOST_ONLY:
            raise InvalidInput(
                f"serving.{name} runs on a serving host, not over HTTP (MILEPOST_URL is set).",
                hint="Run `milepost endpoints serve` where the metadata store is reachable "
                "(unset MILEPOST_URL there).",
            )
        raise AttributeError(name)

    def _path(self, name: Any, *rest: str) -> str:
        return "/".join(("/endpoints", seg(name, "Endpoint name"), *rest))

    def _change(self, name: Any, action: str, **fields: Any) -> EndpointSpec:
        return _spec(self._http.request("POST", self._path(name, action), json=body(**fields)))

    def create(
        self,
        name: str,
        model: str,
        *,
        version: int | None = None,
        stage: str | None = None,
        replicas: int = 1,
        log_predictions: bool = True,
        consequential: bool = False,
    ) -> EndpointSpec:
        """Create an endpoint (see :meth:`DeploymentService.create`)."""
        answer = self._http.request(
            "POST",
            "/endpoints",
            json=body(
                name=name,
                model=model,
                version=version,
                stage=stage,
                replicas=replicas,
                log_predictions=log_predictions,
                consequential=consequential,
            ),
        )
        return _spec(answer["spec"])

    def get(self, name: str) -> tuple[EndpointSpec, int]:
        """An endpoint's spec and revision."""
        answer = self._http.request("GET", self._path(name))
        return _spec(answer["spec"]), int(answer["revision"])

    def list_endpoints(self) -> list[str]:
        """Every endpoint's name, in name order."""
        return list(self._http.request("GET", "/endpoints")["items"])

    endpoints = list_endpoints

    def require(self, name: str) -> None:
        """Raise NotFound unless the endpoint exists."""
        self.get(name)

    def _rollout(self, name: Any, strategy: str, version: Any, **fields: Any) -> EndpointSpec:
        payload = body(strategy=strategy, version=version, **fields)
        return _spec(self._http.request("POST", self._path(name, "rollouts"), json=payload))

    def blue_green(self, name: str, version: int, *, model: str | None = None) -> EndpointSpec:
        """Load the new version beside the old one, with no traffic (preview)."""
        return self._rollout(name, "blue_green", version, model=model)

    def canary(
        self,
        name: str,
        version: int,
        *,
        model: str | None = None,
        policy: CanaryPolicy | None = None,
    ) -> EndpointSpec:
        """Start a canary at the first step of its policy."""
        return self._rollout(name, "canary", version, model=model, policy=policy)

    def shadow(
        self, name: str, version: int, *, model: str | None = None, share: float = 1.0
    ) -> EndpointSpec:
        """Mirror ``share`` of requests to a version whose answers are only logged."""
        return self._rollout(name, "shadow", version, model=model, share=share)

    def rolling(self, name: str, version: int, *, model: str | None = None) -> EndpointSpec:
        """Replace replicas one at a time with the new version."""
        return self._rollout(name, "rolling", version, model=model)

    def switch(self, name: str, *, reason: str | None = None) -> EndpointSpec:
        """Blue/green: move all traffic to the candidate at once."""
        return self._change(name, "switch", reason=reason)

    def promote(
        self, name: str, *, reason: str | None = None, policy: CanaryPolicy | None = None
    ) -> EndpointSpec:
        """Canary: the next step. Shadow: start a canary (with ``policy``)."""
        return self._change(name, "promote", reason=reason, policy=policy)

    def advance(self, name: str, *, reason: str | None = None) -> EndpointSpec:
        """Move the rollout on (a blue/green preview switches; otherwise ``promote``),
        in one call."""
        return self._change(name, "advance", reason=reason)

    def rollback(
        self,
        name: str,
        *,
        reason: str | None = None,
        stats: dict[str, Any] | None = None,
        only_in_progress: bool = False,
    ) -> EndpointSpec:
        """Back to the previous version, instantly (``stats`` and ``only_in_progress``
        are the controller's, which runs on a serving host)."""
        if stats is not None or only_in_progress is not False:
            raise InvalidInput(
                "rollback's stats and only_in_progress are the canary controller's; "
                "over HTTP a rollback takes a reason only.",
            )
        return self._change(name, "rollback", reason=reason)

    def finalize(self, name: str) -> EndpointSpec:
        """Retire the previous version."""
        return _spec(self._http.request("POST", self._path(name, "finalize")))

    def set_replicas(self, name: str, replicas: int) -> EndpointSpec:
        """Change the replica count."""
        answer = self._http.request(
            "PUT", self._path(name, "replicas"), json=body(replicas=replicas)
        )
        return _spec(answer)

    def set_consequential(
        self, name: str, consequential: bool = True, *, reason: str | None = None
    ) -> EndpointSpec:
        """Mark an endpoint as making consequential decisions (or unmark it)."""
        payload = body(consequential=consequential, reason=reason)
        return _spec(self._http.request("PUT", self._path(name, "consequential"), json=payload))

    def status(self, name: str, *, window_seconds: float = 300) -> dict[str, Any]:
        """The spec, the registry's agreement, the rollout, recent events and stats."""
        if isinstance(window_seconds, bool) or not isinstance(window_seconds, int | float):
            raise InvalidInput(
                "window_seconds must be a positive number of seconds, got "
                f"{check.short_repr(window_seconds)}."
            )
        answer: dict[str, Any] = self._http.request(
            "GET", self._path(name, "status"), params={"window_seconds": window_seconds}
        )
        return answer

    def decision(self, request_id: str, *, row: int = 0) -> DecisionRecord:
        """A consequential endpoint's decision by the request id of its answer."""
        from milepost.serving.decisions import DecisionRecord

        check.integer(row, "row", minimum=0)
        answer = self._http.request(
            "GET", f"/decisions/{seg(request_id, 'request_id')}", params={"row": row}
        )
        return record_from_dict(DecisionRecord, answer)

    def decisions(
        self, endpoint: str, *, since_ms: int | None = None, limit: int = 50
    ) -> list[DecisionRecord]:
        """A consequential endpoint's recorded decisions, newest first."""
        from milepost.serving.decisions import DecisionRecord

        if since_ms is not None:
            check.integer(since_ms, "since_ms", minimum=0)
        check.integer(limit, "limit", minimum=1, maximum=100_000)
        answer = self._http.request(
            "GET", self._path(endpoint, "decisions"), params={"since_ms": since_ms, "limit": limit}
        )
        return [record_from_dict(DecisionRecord, d) for d in answer["items"]]

    def prune_prediction_logs(
        self, *, now: int | datetime | None = None, dry_run: bool = False
    ) -> PruneReport:
        """Delete prediction logs past their retention (admin; on the server's stores)."""
        from milepost.serving.decisions import PruneReport

        check.boolean(dry_run, "dry_run")
        payload = body(now=ms(now, "now"), dry_run=dry_run)
        answer = self._http.request("POST", "/prediction-logs/prune", json=payload)
        return record_from_dict(PruneReport, answer)
