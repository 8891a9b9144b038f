"""``milepost.Client``: explicit, run-id based access to everything Milepost stores.

A facade: each method delegates to a service and holds no logic of its own.
"""

from __future__ import annotations

import json
import warnings
from typing import IO, TYPE_CHECKING, Any, Literal, cast

from milepost import _validate as check
from milepost._context import Runtime, get_runtime
from milepost.errors import InvalidInput, did_you_mean
from milepost.tracking.models import (
    ArtifactInfo,
    Environment,
    Experiment,
    Metric,
    PagedList,
    Run,
    RunStatus,
)

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime
    from pathlib import Path

    from milepost.cards.models import CardField, ModelCard
    from milepost.client import RemoteRuntime
    from milepost.evaluation.fairness import FairnessResult
    from milepost.governance.audit import ExportSummary, VerifyReport
    from milepost.governance.lineage import Direction, LineageGraph, LineageNode
    from milepost.models.models import ModelVersion, RegisteredModel, StageEvent
    from milepost.monitoring.monitors import Alert, Monitor, MonitorResult, MonitorRun
    from milepost.pipelines.dag import Pipeline
    from milepost.pipelines.models import PipelineRun, PipelineSummary
    from milepost.pipelines.triggers import Firing, Trigger
    from milepost.promotion.policy import PromotionPolicy
    from milepost.promotion.service import PromotionRequest
    from milepost.serving.decisions import DecisionRecord, PruneReport
    from milepost.serving.spec import CanaryPolicy, EndpointSpec
    from milepost.stores.audit import AuditEvent
    from milepost.tracking.service import StaleRun

__all__ = ["Client", "Strategy", "run_pipeline"]

Strategy = Literal["canary", "blue_green", "shadow", "rolling"]

_AUDIT_FILTERS = (
    "object_type",
    "object_id",
    "actor",
    "action",
    "since_ms",
    "until_ms",
    "limit",
)
_STRATEGIES: tuple[Strategy, ...] = ("canary", "blue_green", "shadow", "rolling")
_MONITOR_CHANGES = ("checks", "window", "schedule", "thresholds", "webhook", "enabled")


def _renamed(old: str, new: str) -> Any:
    """A method's name before the ``list_*``/``get_*`` vocabulary: works for one more
    release and says what to use instead."""

    def alias(self: Client, *args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"Client.{old} is now Client.{new}; the old name goes in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(self, new)(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old
    alias.__doc__ = f"Deprecated: the old name of :meth:`{new}`."
    alias.__deprecated__ = f"Client.{old} is now Client.{new}"  # type: ignore[attr-defined]
    return alias


class Client:
    """Read and write tracking data, the registry, endpoints and the audit trail by id.

    Args:
        runtime: the runtime to use; default the process's (built from the settings).
    """

    def __init__(self, runtime: Runtime | RemoteRuntime | None = None) -> None:
        remote = getattr(type(runtime), "remote", False) is True  # a RemoteRuntime
        if runtime is not None and not remote and not isinstance(runtime, Runtime):
            raise InvalidInput(
                f"Client(runtime=...) takes a Runtime, got {type(runtime).__name__}.",
                hint="Leave it out to use the process's runtime.",
            )
        # A RemoteRuntime (MILEPOST_URL) has the same services as proxies over HTTP.
        self._rt = cast("Runtime", runtime or get_runtime())
        self._tracking = self._rt.tracking

    # experiments
    def create_experiment(self, name: str, *, description: str | None = None) -> Experiment:
        """Create an experiment."""
        return self._tracking.create_experiment(name, description=description)

    def get_experiment(self, ref: str | int) -> Experiment:
        """An experiment by name or id."""
        return self._tracking.get_experiment(ref)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        """All experiments."""
        return self._tracking.list_experiments(include_deleted=include_deleted)

    def rename_experiment(self, ref: str | int, new_name: str) -> Experiment:
        """Rename an experiment."""
        return self._tracking.rename_experiment(ref, new_name)

    def delete_experiment(self, ref: str | int, *, reason: str | None = None) -> Experiment:
        """Soft-delete an experiment."""
        return self._tracking.delete_experiment(ref, reason=reason)

    def restore_experiment(self, ref: str | int) -> Experiment:
        """Restore a deleted experiment."""
        return self._tracking.restore_experiment(ref)

    # runs
    def create_run(
        self,
        experiment: str | int | None = None,
        *,
        run_name: str | None = None,
        tags: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Start a run without making it the active one; end it with ``set_terminated``."""
        return self._tracking.start_run(
            experiment=experiment, run_name=run_name, tags=tags, parent_run_id=parent_run_id
        )

    def set_terminated(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> Run:
        """End a run."""
        self._tracking.end_run(run_id, status)
        return self._tracking.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        """A run with its params, latest metrics and tags."""
        return self._tracking.get_run(run_id)

    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run."""
        self._tracking.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        """Restore a deleted run."""
        self._tracking.restore_run(run_id)

    def search_runs(
        self,
        experiments: str | int | Sequence[str | int] | None = None,
        *,
        filter: str | None = None,
        order_by: str | Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Runs matching ``filter`` in ``order_by`` order; see the README for the syntax."""
        return self._tracking.search_runs(
            experiments,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
        )

    def reap_stale_runs(
        self,
        experiments: str | int | Sequence[str | int] | None = None,
        *,
        dry_run: bool = False,
    ) -> list[StaleRun]:
        """Mark KILLED (audited) the RUNNING runs whose process is gone; reads never do.

        Returns the runs marked, with why (with ``dry_run``, those that would be).
        """
        return self._tracking.reap_stale_runs(experiments, dry_run=dry_run)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every logged value of one metric."""
        return self._tracking.get_metric_history(run_id, key)

    def get_environment(self, env_hash: str) -> Environment:
        """The environment (Python, platform, packages) a run recorded."""
        return self._tracking.get_environment(env_hash)

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        """Log an immutable param."""
        self._tracking.log_params(run_id, {check.string(key, "A param name"): value})

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        *,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue a metric value (durable after ``flush``)."""
        self._tracking.log_metric(run_id, key, value, step=step, timestamp=timestamp)

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        step: int | None = None,
    ) -> None:
        """Log params, tags and metrics in one call."""
        if params is not None:
            self._tracking.log_params(run_id, params)
        if tags is not None:
            self._tracking.set_tags(run_id, tags)
        if metrics is not None:
            self._tracking.log_metrics(run_id, metrics, step=step)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set a tag."""
        self._tracking.set_tags(run_id, {check.string(key, "A tag name"): value})

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag."""
        self._tracking.delete_tag(run_id, key)

    def flush(self) -> None:
        """Block until queued metric values are durable."""
        self._tracking.flush()

    # artifacts
    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactInfo]:
        """A run's artifact files under ``path``."""
        return self._tracking.list_artifacts(run_id, path)

    def download_artifacts(
        self, run_id: str, path: str = "", dst: str | os.PathLike[str] = "."
    ) -> Path:
        """Copy artifacts into a local directory."""
        return self._tracking.download_artifacts(run_id, path, dst)

    def load_text(self, run_id: str, path: str) -> str:
        """An artifact's text (UTF-8)."""
        data = self._tracking.read_artifact(run_id, path)
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"Artifact {path!r} is not UTF-8 text ({exc.reason} at byte {exc.start}).",
                hint="Read binary artifacts with download_artifacts.",
            ) from None

    def load_dict(self, run_id: str, path: str) -> Any:
        """An artifact written by ``log_dict`` (JSON)."""
        data = self._tracking.read_artifact(run_id, path)
        try:
            return json.loads(data)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise InvalidInput(
                f"Artifact {path!r} is not JSON: {exc}.",
                hint="load_dict reads what log_dict wrote as .json; use load_text otherwise.",
            ) from None

    # model registry
    def get_model(self, name: str) -> RegisteredModel:
        """A registered model with its stages and aliases."""
        return self._rt.models.get_model(name)

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model."""
        return self._rt.models.list_models()

    def get_model_version(self, uri_or_name: str, version: int | None = None) -> ModelVersion:
        """A version by URI (``models:/churn/Production``) or by name and number."""
        if version is not None:
            return self._rt.models.get_version(uri_or_name, version)
        return self._rt.models.resolve(uri_or_name)

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, oldest first."""
        return self._rt.models.versions(name)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at a version."""
        self._rt.models.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        self._rt.models.delete_alias(name, alias)

    def archive_model_version(self, name: str, version: int, *, reason: str | None = None) -> None:
        """Archive a version."""
        self._rt.models.archive(name, version, reason=reason)

    def get_model_history(self, name: str) -> list[StageEvent]:
        """Every stage change of a model."""
        return self._rt.models.history(name)

    def production_at(self, name: str, at: datetime | int) -> int | None:
        """The version that was in Production at a moment."""
        return self._rt.models.production_at(name, at)

    def audit_fairness(
        self,
        model_uri: str,
        data: Any,
        target: str,
        sensitive_features: Sequence[str],
        *,
        min_group_size: int = 30,
        threshold: float = 0.5,
        positive_label: Any = None,
        trusted: bool = False,
    ) -> FairnessResult:
        """Audit a model version's fairness across sensitive features; stored and audited
        (see :func:`milepost.audit_fairness`)."""
        return self._rt.evaluation.audit_fairness(
            model_uri,
            data,
            target=target,
            sensitive_features=sensitive_features,
            min_group_size=min_group_size,
            threshold=threshold,
            positive_label=positive_label,
            trusted=trusted,
        )

    def list_fairness_audits(self, model_uri: str, *, limit: int = 20) -> list[FairnessResult]:
        """A model version's stored fairness audits, newest first."""
        return self._rt.evaluation.fairness_for_version(model_uri, limit=limit)

    def get_fairness_audit(self, audit_id: str) -> FairnessResult:
        """One stored fairness audit."""
        return self._rt.evaluation.get_fairness_audit(audit_id)

    def model_card(self, name: str, version: int) -> ModelCard:
        """The model card of a version: what the store knows plus the written sections
        (render it with ``milepost.cards.render_card`` / ``write_card``)."""
        return self._rt.cards.card(name, version)

    def set_model_card_field(
        self,
        name: str,
        field: str,
        text: str,
        *,
        version: int | None = None,
        reason: str | None = None,
    ) -> CardField:
        """Write one section of a model's card (``version``: that version only), audited."""
        return self._rt.cards.set_field(name, field, text, version=version, reason=reason)

    def set_model_card_fields(
        self,
        name: str,
        fields: Mapping[str, str],
        *,
        version: int | None = None,
        reason: str | None = None,
    ) -> list[CardField]:
        """Write several sections of a model's card in one transaction, audited."""
        return self._rt.cards.set_fields(name, fields, version=version, reason=reason)

    def clear_model_card_field(
        self, name: str, field: str, *, version: int | None = None, reason: str | None = None
    ) -> None:
        """Remove one written section (the model's, or one version's override), audited."""
        self._rt.cards.clear_field(name, field, version=version, reason=reason)

    def set_promotion_policy(self, name: str, policy: Any) -> PromotionPolicy:
        """Set a model's promotion policy (a PromotionPolicy, dict, YAML text or path)."""
        return self._rt.promotion.set_policy(name, policy)

    def promote(
        self, name: str, version: int, to: str, *, reason: str | None = None
    ) -> PromotionRequest:
        """Run the gates and promote (or wait for approval, or raise GateFailed)."""
        return self._rt.promotion.promote(name, version, to, reason=reason)

    def approve(self, request_id: str, *, reason: str | None = None) -> PromotionRequest:
        """Approve a waiting promotion request."""
        return self._rt.promotion.approve(request_id, reason=reason)

    def reject(self, request_id: str, *, reason: str | None = None) -> PromotionRequest:
        """Reject a waiting promotion request."""
        return self._rt.promotion.reject(request_id, reason=reason)

    def list_promotion_requests(
        self, *, status: str | None = "pending_approval", model: str | None = None
    ) -> list[PromotionRequest]:
        """Promotion requests, newest first (``status=None``: every status)."""
        return self._rt.promotion.list_requests(status=status, model=model)

    def get_promotion_request(self, request_id: str) -> PromotionRequest:
        """One promotion request (a full id or a unique prefix) with its gate results."""
        return self._rt.promotion.get_request(request_id)

    # deployments (endpoints)
    def create_endpoint(
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
        """Create an endpoint tracking Production of ``model``, or pinned to ``version``;
        ``consequential``: each answer is a decision recorded with its explanation.

        See :meth:`milepost.serving.DeploymentService.create` for what each refusal means.
        """
        return self._rt.serving.create(
            name,
            model,
            version=version,
            stage=stage,
            replicas=replicas,
            log_predictions=log_predictions,
            consequential=consequential,
        )

    def get_endpoint(self, name: str) -> EndpointSpec:
        """An endpoint's spec: variants, weights, replicas and the rollout in progress."""
        return self._rt.serving.get(name)[0]

    def list_endpoints(self) -> list[str]:
        """The name of every endpoint."""
        return self._rt.serving.list_endpoints()

    def update_endpoint(
        self,
        name: str,
        version: int | None = None,
        *,
        strategy: Strategy = "canary",
        model: str | None = None,
        policy: CanaryPolicy | None = None,
        share: float | None = None,
        consequential: bool | None = None,
    ) -> EndpointSpec:
        """Start rolling ``version`` out on an endpoint with a strategy, and/or mark it as
        making consequential decisions (or unmark it).

        Args:
            strategy: ``canary`` (steps of traffic, judged by ``policy``), ``blue_green``
                (loaded beside the primary with no traffic until :meth:`advance_endpoint`),
                ``shadow`` (mirrors ``share`` of requests, answers only logged) or
                ``rolling`` (replicas replaced one by one by ``milepost endpoints serve``).
            model: another model than the endpoint's (pinned endpoints only).
            consequential: True marks the endpoint (its variants must be explainable;
                each answer is then recorded with its explanation), False unmarks it;
                applied before the rollout, which then brings in only an explainable
                version. See :meth:`milepost.serving.DeploymentService.set_consequential`.

        Raises:
            InvalidInput: an unknown strategy, ``policy``/``share`` with a strategy that
                does not take it, or neither a version nor ``consequential``.
        """
        if not isinstance(strategy, str) or strategy not in _STRATEGIES:
            raise InvalidInput(
                f"Unknown rollout strategy {check.short_repr(strategy)}."
                f"{did_you_mean(str(strategy), _STRATEGIES)}",
                hint="Strategies: " + ", ".join(_STRATEGIES) + ".",
            )
        if policy is not None and strategy != "canary":
            raise InvalidInput(f"A canary policy goes with strategy='canary', not {strategy!r}.")
        if share is not None and strategy != "shadow":
            raise InvalidInput(f"share goes with strategy='shadow', not {strategy!r}.")
        serving = self._rt.serving
        if version is None:
            if consequential is None:
                raise InvalidInput(
                    f"Nothing to update on endpoint {name!r}.",
                    hint="Give a version to roll out, consequential=True/False, or both.",
                )
            if policy is not None or share is not None:
                raise InvalidInput("policy and share go with a version to roll out.")
            return serving.set_consequential(name, consequential)
        if consequential is not None:
            serving.set_consequential(name, consequential)
        if strategy == "canary":
            return serving.canary(name, version, model=model, policy=policy)
        if strategy == "blue_green":
            return serving.blue_green(name, version, model=model)
        if strategy == "shadow":
            return serving.shadow(name, version, model=model, share=1.0 if share is None else share)
        return serving.rolling(name, version, model=model)

    def advance_endpoint(self, name: str, *, reason: str | None = None) -> EndpointSpec:
        """Move the rollout forward: a canary to its next step (at the last, primary), a
        shadow to a canary, a blue/green preview to all traffic. Stage changes are
        :meth:`promote`."""
        serving = self._rt.serving
        ro = serving.get(name)[0].rollout
        if ro is not None and ro.kind == "blue_green" and ro.status == "preview":
            return serving.switch(name, reason=reason)
        return serving.promote(name, reason=reason)

    def rollback_endpoint(self, name: str, *, reason: str | None = None) -> EndpointSpec:
        """Back to the previous version, instantly (it is still loaded)."""
        return self._rt.serving.rollback(name, reason=reason)

    def get_endpoint_status(self, name: str, *, window_seconds: float = 300) -> dict[str, Any]:
        """The spec, the registry's agreement, the rollout, recent events and stats."""
        return self._rt.serving.status(name, window_seconds=window_seconds)

    def get_decision(self, request_id: str, *, row: int = 0) -> DecisionRecord:
        """A consequential endpoint's decision by the request id of its answer: input,
        model version, prediction, probabilities and explanation, from the prediction log
        (see :meth:`milepost.serving.DeploymentService.decision`)."""
        return self._rt.serving.decision(request_id, row=row)

    def list_decisions(
        self, endpoint: str, *, since_ms: int | None = None, limit: int = 50
    ) -> list[DecisionRecord]:
        """A consequential endpoint's recorded decisions, newest first."""
        return self._rt.serving.decisions(endpoint, since_ms=since_ms, limit=limit)

    def prune_prediction_logs(
        self, *, now: int | datetime | None = None, dry_run: bool = False
    ) -> PruneReport:
        """Delete prediction logs and decision records past their retention (the settings
        ``prediction_log_retention_days`` and ``decision_retention_days``)."""
        return self._rt.serving.prune_prediction_logs(now=now, dry_run=dry_run)

    # triggers
    def add_trigger(
        self,
        name: str,
        pipeline: str,
        *,
        params: dict[str, Any] | None = None,
        schedule: str | None = None,
        on_drift: str | None = None,
        on_performance: str | None = None,
        on_data: str | None = None,
        min_rows: int | None = None,
    ) -> Trigger:
        """Launch ``pipeline`` (``module:attr``) with ``params`` on exactly one cause: a
        cron ``schedule``, a monitor's drift or performance alerts, or ``min_rows`` new
        rows in a dataset or feature view (``on_data``). Checked now; see
        :meth:`milepost.pipelines.triggers.TriggerService.add`."""
        return self._rt.triggers.add(
            name,
            pipeline,
            params=params,
            schedule=schedule,
            on_drift=on_drift,
            on_performance=on_performance,
            on_data=on_data,
            min_rows=min_rows,
        )

    def get_trigger(self, name: str) -> Trigger:
        """One trigger's definition and cursor."""
        return self._rt.triggers.get(name)

    def list_triggers(self) -> list[Trigger]:
        """Every trigger, by name."""
        return self._rt.triggers.list()

    def remove_trigger(self, name: str, *, reason: str | None = None) -> None:
        """Delete a trigger and its firings (audited)."""
        self._rt.triggers.remove(name, reason=reason)

    def enable_trigger(self, name: str) -> Trigger:
        """Evaluate a trigger again (from now on)."""
        return self._rt.triggers.enable(name)

    def disable_trigger(self, name: str) -> Trigger:
        """Stop evaluating a trigger."""
        return self._rt.triggers.disable(name)

    def fire_trigger(
        self, name: str, *, reason: str | None = None, launch: str = "subprocess"
    ) -> Firing:
        """Fire a trigger by hand; ``launch="inline"`` runs the pipeline here, to the end."""
        return self._rt.triggers.fire(name, reason=reason, launcher=launch)

    def list_firings(self, trigger: str | None = None, *, limit: int = 50) -> list[Firing]:
        """Firings, newest first, with their pipeline run's status."""
        return self._rt.triggers.firings(trigger, limit=limit)

    # monitors
    def create_monitor(
        self,
        name: str,
        *,
        endpoint: str | None = None,
        model: str | None = None,
        version: int | None = None,
        checks: Sequence[str] = ("feature_drift",),
        window: str = "1h",
        schedule: str | None = None,
        thresholds: dict[str, float] | None = None,
        webhook: str | None = None,
    ) -> Monitor:
        """Define a monitor: ``checks`` (feature_drift, prediction_drift, performance, skew)
        on an endpoint or a model version over ``window`` ("1h", "last 1000"), on
        ``schedule`` (cron in UTC or "every 10m"; None: only when run), alerting when a
        metric crosses ``thresholds`` (``{"psi": 0.2}``) and posting alerts to ``webhook``.
        See :meth:`milepost.monitoring.MonitorService.create`."""
        return self._rt.monitors.create(
            name,
            endpoint=endpoint,
            model=model,
            version=version,
            checks=checks,
            window=window,
            schedule=schedule,
            thresholds=thresholds,
            webhook=webhook,
        )

    def update_monitor(self, name: str, **changes: Any) -> Monitor:
        """Change a monitor (audited): ``checks``, ``window``, ``schedule`` (None: run by
        hand), ``thresholds``, ``webhook`` (None: removed), ``enabled``; see
        :meth:`milepost.monitoring.MonitorService.update`."""
        for key in changes:
            if key not in _MONITOR_CHANGES:
                raise InvalidInput(
                    f"update_monitor cannot change {key!r}.{did_you_mean(key, _MONITOR_CHANGES)}",
                    hint="It changes: " + ", ".join(_MONITOR_CHANGES) + ".",
                )
        return self._rt.monitors.update(name, **changes)

    def delete_monitor(self, name: str, *, reason: str | None = None) -> None:
        """Delete a monitor with its results and alerts (audited)."""
        self._rt.monitors.delete(name, reason=reason)

    def acknowledge_alert(self, alert_id: int) -> Alert:
        """Mark an alert seen (by you, now)."""
        return self._rt.monitors.acknowledge(alert_id)

    def run_monitor(self, name: str, *, now: datetime | int | None = None) -> MonitorRun:
        """Run a monitor once over the window ending now (or at ``now``): results are
        stored, alerts raised and delivered."""
        return self._rt.monitors.run(name, now)

    def get_monitor(self, name: str) -> Monitor:
        """One monitor's definition, last run and next scheduled run."""
        return self._rt.monitors.get(name)

    def list_monitors(self) -> list[Monitor]:
        """Every monitor, by name."""
        return self._rt.monitors.list()

    def list_monitor_results(
        self,
        name: str,
        *,
        since: datetime | int | None = None,
        metric: str | None = None,
        feature: str | None = None,
    ) -> list[MonitorResult]:
        """A monitor's results, oldest first (each (metric, feature) is a time series)."""
        return self._rt.monitors.results(name, since=since, metric=metric, feature=feature)

    def list_alerts(
        self,
        monitor: str | None = None,
        *,
        since: datetime | int | None = None,
        acknowledged: bool | None = None,
    ) -> list[Alert]:
        """Alerts, newest first (of one monitor, or all)."""
        return self._rt.monitors.alerts(monitor, since=since, acknowledged=acknowledged)

    # pipelines
    def run_pipeline(
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
        """Run a pipeline (or its ``module:attr`` ref) to the end; a failed step makes a
        ``failed`` run, not an exception. See :meth:`PipelineService.run`."""
        return self._rt.pipelines.run(
            pipeline,
            params,
            runner=runner,
            address=address,
            max_workers=max_workers,
            cache=cache,
            run_id=run_id,
            trigger=trigger,
            on_event=on_event,
        )

    def resume_pipeline(
        self,
        run_id: str,
        *,
        runner: str | None = None,
        address: str | None = None,
        max_workers: int | None = None,
        on_event: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> PipelineRun:
        """Run a failed pipeline run again as a new run, reusing its succeeded steps."""
        return self._rt.pipelines.resume(
            run_id, runner=runner, address=address, max_workers=max_workers, on_event=on_event
        )

    def get_pipeline_run(self, run_id: str) -> PipelineRun:
        """A pipeline run with its steps; ``.outputs(step)`` loads a step's values."""
        return self._rt.pipelines.get_run(run_id)

    def list_pipeline_runs(
        self, pipeline: str | None = None, *, status: str | None = None, limit: int = 50
    ) -> list[PipelineRun]:
        """Pipeline runs, newest first (of one pipeline, with one status)."""
        return self._rt.pipelines.list_runs(pipeline, status=status, limit=limit)

    def list_pipelines(self) -> list[PipelineSummary]:
        """Every pipeline that has run: name, ref, run count, latest run."""
        return self._rt.pipelines.list_pipelines()

    # audit
    def list_audit_events(self, **filters: Any) -> list[AuditEvent]:
        """Audit events, newest first (``object_type``, ``object_id``, ``actor``,
        ``action``, ``since_ms``, ``until_ms``, ``limit``)."""
        _check_audit_filters("list_audit_events", filters, _AUDIT_FILTERS)
        return self._rt.audit.list(**filters)

    def export_audit(self, dest: IO[str] | str | Path, **filters: Any) -> ExportSummary:
        """Write the matching audit events as JSON lines, oldest first, with their hashes
        (filters as :meth:`list_audit_events`, without ``limit``); see
        :meth:`AuditService.export`. Check the file with :meth:`verify_audit_export`."""
        _check_audit_filters("export_audit", filters, _AUDIT_FILTERS[:-1])
        return self._rt.audit.export(dest, **filters)

    @staticmethod
    def verify_audit_export(
        source: IO[str] | str | Path, *, partial: bool = False, expect_head: str | None = None
    ) -> VerifyReport:
        """Check an exported trail away from the store (hashes, links, gaps)."""
        from milepost.governance.audit import AuditService

        return AuditService.verify_export(source, partial=partial, expect_head=expect_head)

    def audit_head(self) -> str:
        """The audit chain's head as ``SEQ:HASH``: keep it outside the store as an anchor."""
        return self._rt.audit.head_anchor()

    def verify_audit(
        self, *, expect_head: str | None = None, anchor: str | None = None
    ) -> VerifyReport:
        """Check the audit chain and cross-check the current state against it.

        ``expect_head`` (or its older name ``anchor``) is a head kept outside the store
        (``SEQ:HASH`` or the hash alone); see :meth:`AuditService.verify`.
        """
        return self._rt.audit.verify(expect_head=expect_head, anchor=anchor)

    # lineage
    def lineage(
        self,
        ref: str,
        *,
        direction: Direction = "both",
        depth: int | None = None,
    ) -> LineageGraph:
        """The lineage graph around ``ref`` (``models:/NAME/3``, ``datasets:/NAME@4``,
        ``runs:/ID``, ``endpoints:/NAME``, ``pipelines:/RUN_ID`` or ``KIND:REF``): what it
        was made from (``direction="upstream"``), what was made from it
        (``"downstream"``) or both, up to ``depth`` edges. See
        :meth:`milepost.governance.lineage.LineageService.graph`."""
        return self._rt.lineage.graph(ref, direction=direction, depth=depth)

    def list_models_trained_on(
        self, dataset: str, *, stage: str | None = None
    ) -> list[LineageNode]:
        """Model versions trained on ``dataset`` (``NAME@VERSION``), directly or through
        runs, training sets and pipelines; ``stage="Production"`` keeps those in it."""
        return self._rt.lineage.models_trained_on(dataset, stage=stage)

    # the names before the list_*/get_* vocabulary, for one release (DeprecationWarning)
    model_history = _renamed("model_history", "get_model_history")
    fairness_audits = _renamed("fairness_audits", "list_fairness_audits")
    monitor_results = _renamed("monitor_results", "list_monitor_results")
    models_trained_on = _renamed("models_trained_on", "list_models_trained_on")
    endpoint_status = _renamed("endpoint_status", "get_endpoint_status")
    decision = _renamed("decision", "get_decision")
    promotion_requests = _renamed("promotion_requests", "list_promotion_requests")
    audit_events = _renamed("audit_events", "list_audit_events")


def _check_audit_filters(call: str, filters: Mapping[str, Any], known: Sequence[str]) -> None:
    for name in filters:
        if name not in known:
            raise InvalidInput(
                f"{call} has no filter {name!r}.{did_you_mean(name, known)}",
                hint="Filters: " + ", ".join(known) + ".",
            )


def run_pipeline(
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
    """Run a pipeline on the process's runtime (``milepost.run_pipeline(churn, {"c": 0.5})``).

    The same arguments as :meth:`Client.run_pipeline`; returns the run, ``succeeded`` or
    ``failed`` (a failed step does not raise: ``run.failed_step`` and ``run.error`` say
    what happened, ``milepost pipelines resume RUN`` continues it).
    """
    return get_runtime().pipelines.run(
        pipeline,
        params,
        runner=runner,
        address=address,
        max_workers=max_workers,
        cache=cache,
        run_id=run_id,
        trigger=trigger,
        on_event=on_event,
    )
