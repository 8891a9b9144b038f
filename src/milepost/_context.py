"""The runtime: one composition root that builds every service on a store context.

The process's runtime is built on the process's default store context
(:func:`milepost.stores.context.default_context`) on first use; capability module-level
functions (``milepost.data.register()``) use the same context, so they share the
runtime's services. ``configure()`` replaces the default context (tests, notebooks that
switch projects); ``reset()`` drops it so the next call re-reads settings.

A :class:`Runtime` of your own (``milepost.Runtime.open(home=...)``) is independent of
the process's: use it to embed Milepost or to work on two projects at once.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from milepost import _validate as check
from milepost.config import ResolvedSettings, Settings, build_settings, load_settings
from milepost.errors import InvalidInput
from milepost.stores.context import (
    StoreContext,
    default_context,
    process_remote,
    replace_default_context,
    replace_process_remote,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from types import ModuleType, TracebackType

    from milepost.cards.service import CardService
    from milepost.config import Source
    from milepost.data.service import DataService
    from milepost.evaluation.service import EvaluationService
    from milepost.features.api import FeatureStore
    from milepost.features.service import FeatureService
    from milepost.governance.audit import AuditService
    from milepost.governance.lineage import LineageService
    from milepost.governance.roles import RoleService
    from milepost.governance.tokens import TokenService
    from milepost.models.service import ModelService
    from milepost.monitoring.service import MonitorService
    from milepost.pipelines.scheduler import Scheduler
    from milepost.pipelines.service import PipelineService
    from milepost.pipelines.triggers import Launcher, TriggerService
    from milepost.promotion.service import PromotionService
    from milepost.serving.service import DeploymentService
    from milepost.stores.blobs import BlobStore
    from milepost.stores.metadata import MetadataStore
    from milepost.tracking.service import TrackingService

__all__ = ["Runtime", "configure", "get_runtime", "reset"]


class Runtime:
    """Settings plus the stores and services built from them.

    ``Runtime.open(**overrides)`` resolves the settings as ``configure()`` does without
    touching the process's runtime; close it (or use it as a context manager) when done.
    ``Runtime(resolved)`` takes settings already resolved; ``Runtime(context=ctx)``
    builds on an open store context and shares its services.

    Attributes:
        settings, resolved: the settings and where each value came from.
        db, blobs: the metadata store and the artifact store.
        tracking, data, features, models, evaluation, promotion, serving, audit, roles, tokens,
        monitors, pipelines, lineage, cards: the services, each imported and built on first
            use (with the services it depends on) and shared by every runtime on the same
            context.
    """

    def __init__(
        self, resolved: ResolvedSettings | None = None, *, context: StoreContext | None = None
    ) -> None:
        if context is None:
            if resolved is None:
                raise InvalidInput(
                    "Runtime takes resolved settings or a store context.",
                    hint="Runtime.open(**settings) resolves settings as configure() does.",
                )
            context = StoreContext(resolved)
        elif resolved is not None or not isinstance(context, StoreContext):
            raise InvalidInput(
                "Runtime takes resolved settings or a store context (a StoreContext), "
                f"not both; got context={type(context).__name__}.",
            )
        self.context = context

    # Each service is imported and built on first use, so a command that only touches
    # tracking never imports serving (FastAPI), evaluation (scikit-learn) or ONNX. The
    # instance lives in the context's component cache (one per context, shared with the
    # capability module-level functions, closed newest first, so a service's
    # dependencies, built inside its builder, close after it); cached_property only
    # saves the lookup on later reads. A new service is one more cached_property here:
    # import inside it, build with ``self.context.component(Class, builder)`` and reach
    # other services through ``self.<name>`` so they are built on demand too.

    @cached_property
    def tracking(self) -> TrackingService:
        """Runs, params, metrics and artifacts."""
        from milepost.tracking._active import tracking_service

        return tracking_service(self.context)

    @cached_property
    def audit(self) -> AuditService:
        """The audit log."""
        from milepost.governance.audit import AuditService

        return self.context.component(AuditService, lambda c: AuditService(c.db))

    @cached_property
    def lineage(self) -> LineageService:
        """The lineage graph over everything recorded (read-only)."""
        from milepost.governance.lineage import LineageService

        return self.context.component(LineageService, lambda c: LineageService(c.db))

    @cached_property
    def data(self) -> DataService:
        """Dataset versions."""
        from milepost.data.api import data_service

        return data_service(self.context)

    @cached_property
    def roles(self) -> RoleService:
        """Role grants and checks."""
        from milepost.governance.roles import RoleService

        return self.context.component(RoleService, lambda c: RoleService(c.db, c.settings.actor()))

    @cached_property
    def tokens(self) -> TokenService:
        """API tokens of the servers (hashed, with role, expiry and revocation)."""
        from milepost.governance.tokens import TokenService

        return self.context.component(
            TokenService, lambda c: TokenService(c.db, c.settings.actor(), self.roles)
        )

    @cached_property
    def features(self) -> FeatureService:
        """Feature views, materialization and online reads."""
        from milepost.features.api import feature_service

        return feature_service(self.context)

    @cached_property
    def models(self) -> ModelService:
        """The model registry."""
        from milepost.models.service import ModelService

        return self.context.component(
            ModelService,
            lambda c: ModelService(
                c.db,
                c.blobs,
                c.settings,
                tracking=self.tracking,
                data=lambda: self.data,  # built when a command needs them
                features=lambda: self.features,
            ),
        )

    @cached_property
    def evaluation(self) -> EvaluationService:
        """Model evaluation."""
        from milepost.evaluation.service import EvaluationService

        return self.context.component(
            EvaluationService,
            lambda c: EvaluationService(c.db, c.settings, models=self.models, data=self.data),
        )

    @cached_property
    def promotion(self) -> PromotionService:
        """Gates, approvals and stage changes."""
        from milepost.promotion.service import PromotionService

        return self.context.component(
            PromotionService,
            lambda c: PromotionService(
                c.db,
                c.settings,
                models=self.models,
                evaluation=self.evaluation,
                data=self.data,
                roles=self.roles,
            ),
        )

    @cached_property
    def serving(self) -> DeploymentService:
        """Endpoints, deployments and rollouts."""
        from milepost.serving.service import DeploymentService

        return self.context.component(
            DeploymentService,
            lambda c: DeploymentService(
                c.db,
                c.settings,
                models=self.models,
                features=self.features,
                promotion=self.promotion,
            ),
        )

    @cached_property
    def monitors(self) -> MonitorService:
        """Monitors, their results and alerts (reading serving's log and labels)."""
        from milepost.monitoring.service import MonitorService
        from milepost.serving.monitor_sources import ServingMonitorSources

        return self.context.component(
            MonitorService,
            lambda c: MonitorService(
                c.db, c.settings.actor(), ServingMonitorSources(self.serving, self.models)
            ),
        )

    @cached_property
    def cards(self) -> CardService:
        """Model cards: built from what every capability recorded, plus written sections."""
        from milepost.cards.service import CardService

        return self.context.component(
            CardService,
            lambda c: CardService(
                c.db,
                c.settings.actor(),
                models=self.models,
                evaluation=self.evaluation,
                promotion=self.promotion,
                data=self.data,
                tracking=self.tracking,
                serving=lambda: self.serving,
                lineage=lambda: self.lineage,
            ),
        )

    @cached_property
    def pipelines(self) -> PipelineService:
        """Pipeline runs: run, resume, read, reap (the engine is imported on a run)."""
        from milepost.pipelines.service import PipelineService

        return self.context.component(
            PipelineService, lambda c: PipelineService(c.db, c.blobs, c.resolved)
        )

    @cached_property
    def triggers(self) -> TriggerService:
        """Pipeline triggers (schedule, drift, performance, data volume) and their firings."""
        from milepost.pipelines._sources import RuntimeSources
        from milepost.pipelines.triggers import TriggerService

        return self.context.component(
            TriggerService,
            lambda c: TriggerService(
                c.db,
                c.settings.actor(),
                RuntimeSources(
                    monitors=lambda: self.monitors,
                    data=lambda: self.data,
                    features=lambda: self.features,
                ),
                launcher=self.launcher,
                run_status=self._pipeline_run_status,
            ),
        )

    def launcher(self, kind: str = "subprocess") -> Launcher:
        """How a trigger's firing starts its pipeline: ``"inline"`` (in this process, to
        the end) or ``"subprocess"`` (``milepost pipelines run`` detached)."""
        from milepost.pipelines.scheduler import InlineLauncher, SubprocessLauncher

        kind = check.choice(kind, "launch", ("inline", "subprocess"))
        if kind == "subprocess":
            return SubprocessLauncher(self.settings)
        from milepost.pipelines.dag import load_pipeline

        return InlineLauncher(self.pipelines.run, load_pipeline)

    def scheduler(
        self, holder: str | None = None, *, lease_seconds: float = 15.0, launch: str = "subprocess"
    ) -> Scheduler:
        """A scheduler on this runtime: fires triggers, runs due monitors, reaps stale runs,
        steps canaries whose controller is gone and prunes prediction logs past their
        retention (:mod:`milepost.pipelines.scheduler`)."""
        from milepost.pipelines import _sources
        from milepost.pipelines.scheduler import Scheduler, default_holder

        holder = holder or default_holder()
        work: list[Any] = [
            ("monitors", lambda now: _sources.run_due_monitors(self.monitors, now)),
            ("runs", lambda now: _sources.reap_tracking_runs(self.tracking)),
            ("pipeline runs", lambda now: _sources.reap_pipeline_runs(self.pipelines)),
            ("canaries", lambda now: _sources.orphan_canaries(self.serving, holder)),
            ("prediction logs", _sources.PruneLogs(lambda: self.serving)),
        ]
        return Scheduler(
            self.triggers,
            launcher=self.launcher(launch),
            work=work,
            holder=holder,
            lease_seconds=lease_seconds,
        )

    def _pipeline_run_status(self, run_id: str) -> str | None:
        return str(self.pipelines.get_run(run_id).status)

    @classmethod
    def open(cls, *, cwd: Path | None = None, **overrides: Any) -> Runtime:
        """A new runtime: settings resolved from ``cwd`` as usual, then ``overrides`` applied.

        Example: ``with milepost.Runtime.open(home="/tmp/project") as rt: rt.data.get(...)``.
        """
        return cls(_resolve(cwd, overrides))

    def feature_store(
        self,
        repo: str | Path | ModuleType | Sequence[Any] | None = None,
        *,
        history: Sequence[str | Path | ModuleType] = (),
    ) -> FeatureStore:
        """A :class:`~milepost.features.FeatureStore` on this runtime's stores."""
        from milepost.features.api import FeatureStore

        return FeatureStore(repo, history=history, context=self.context)

    @property
    def resolved(self) -> ResolvedSettings:
        return self.context.resolved

    @property
    def settings(self) -> Settings:
        return self.context.settings

    @property
    def db(self) -> MetadataStore:
        return self.context.db

    @property
    def blobs(self) -> BlobStore:
        return self.context.blobs

    def close(self) -> None:
        """Flush pending writes and release connections."""
        self.context.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Runtime {self.settings.resolved_metadata_uri()}>"


def _resolve(cwd: Path | None, overrides: dict[str, Any]) -> ResolvedSettings:
    if cwd is not None:
        cwd = check.local_path(cwd, "cwd", kind="dir")
    resolved = load_settings(cwd=cwd)
    if overrides:
        merged = resolved.settings.model_dump() | overrides
        sources: dict[str, Source] = dict(resolved.sources)
        sources.update(dict.fromkeys(overrides, "code"))
        resolved = build_settings(merged, sources, resolved.project_file)
    return resolved


_runtime: Runtime | None = None
_lock = threading.RLock()


def get_runtime() -> Runtime:
    """The process's runtime, built from the settings on first use.

    With the ``url`` setting (``MILEPOST_URL``) it is a
    :class:`~milepost.client.RemoteRuntime`: the same services as proxies to that
    ``milepost server``, and no local store is opened. (Typed as :class:`Runtime`: the
    proxies have the services' methods, and callers need not tell the two apart.)
    """
    global _runtime
    remote = process_remote()
    if remote is not None:
        return cast("Runtime", remote)
    ctx = default_context()
    rt = _runtime
    if rt is None or rt.context is not ctx:
        with _lock:
            if _runtime is None or _runtime.context is not ctx:
                _runtime = Runtime(context=ctx)
            rt = _runtime
    return rt


def configure(*, cwd: Path | None = None, **overrides: Any) -> Runtime:
    """Replace the runtime: settings resolved as usual, then ``overrides`` applied.

    ``configure(url=..., token=...)`` switches the process to remote mode (no local store
    is opened); ``configure(url=None)`` back to the embedded stores.
    """
    global _runtime
    with _lock:
        resolved = _resolve(cwd, overrides)
        if resolved.settings.url:
            _runtime = None
            replace_default_context(None)
            return cast("Runtime", replace_process_remote(resolved))
        replace_process_remote(None)
        ctx = StoreContext(resolved)
        replace_default_context(ctx)
        _runtime = Runtime(context=ctx)  # so get_runtime() does not read the settings again
        return _runtime


def reset() -> None:
    """Close the runtime; the next call builds a new one from the current settings."""
    global _runtime
    with _lock:
        _runtime = None
        try:
            replace_process_remote(None)
        finally:
            replace_default_context(None)
