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
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost.config import ResolvedSettings, Settings, build_settings, load_settings
from milepost.data.api import data_service
from milepost.errors import InvalidInput
from milepost.evaluation.service import EvaluationService
from milepost.features.api import FeatureStore, feature_service
from milepost.governance.audit import AuditService
from milepost.governance.roles import RoleService
from milepost.models.service import ModelService
from milepost.promotion.service import PromotionService
from milepost.serving.service import DeploymentService
from milepost.stores.context import StoreContext, default_context, replace_default_context
from milepost.tracking._active import tracking_service

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from types import ModuleType, TracebackType

    from milepost.config import Source
    from milepost.monitoring.service import MonitorService
    from milepost.stores.blobs import BlobStore
    from milepost.stores.metadata import MetadataStore

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
        tracking, data, features, models, evaluation, promotion, serving, audit, roles,
            monitors: the services (``monitors`` built on first use).
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
        ctx = context
        self.context = ctx
        self.tracking = tracking_service(ctx)
        self.audit = ctx.component(AuditService, lambda c: AuditService(c.db))
        self.data = data_service(ctx)
        self.roles = ctx.component(RoleService, lambda c: RoleService(c.db, c.settings.actor()))
        self.features = feature_service(ctx)
        self.models = ctx.component(
            ModelService,
            lambda c: ModelService(
                c.db,
                c.blobs,
                c.settings,
                tracking=self.tracking,
                data=self.data,
                features=self.features,
            ),
        )
        self.evaluation = ctx.component(
            EvaluationService,
            lambda c: EvaluationService(c.db, c.settings, models=self.models, data=self.data),
        )
        self.promotion = ctx.component(
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
        self.serving = ctx.component(
            DeploymentService,
            lambda c: DeploymentService(
                c.db,
                c.settings,
                models=self.models,
                features=self.features,
                promotion=self.promotion,
            ),
        )

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
        return FeatureStore(repo, history=history, context=self.context)

    @property
    def monitors(self) -> MonitorService:
        """Monitors, results and alerts (:class:`~milepost.monitoring.MonitorService`)."""
        from milepost.monitoring.service import MonitorService
        from milepost.serving.monitor_sources import ServingMonitorSources

        return self.context.component(
            MonitorService,
            lambda c: MonitorService(
                c.db, c.settings.actor(), ServingMonitorSources(self.serving, self.models)
            ),
        )

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
    """The process's runtime, built from the settings on first use."""
    global _runtime
    ctx = default_context()
    rt = _runtime
    if rt is None or rt.context is not ctx:
        with _lock:
            if _runtime is None or _runtime.context is not ctx:
                _runtime = Runtime(context=ctx)
            rt = _runtime
    return rt


def configure(*, cwd: Path | None = None, **overrides: Any) -> Runtime:
    """Replace the runtime: settings resolved as usual, then ``overrides`` applied."""
    with _lock:
        replace_default_context(StoreContext(_resolve(cwd, overrides)))
        return get_runtime()


def reset() -> None:
    """Close the runtime; the next call builds a new one from the current settings."""
    global _runtime
    with _lock:
        _runtime = None
        replace_default_context(None)
