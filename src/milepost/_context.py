"""The runtime: settings, stores and services, built once per process on first use.

Embedded mode talks to the stores directly. ``configure()`` replaces the runtime (tests,
notebooks that switch projects); ``reset()`` drops it so the next call re-reads settings.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from milepost import _validate as check
from milepost.config import ResolvedSettings, Settings, build_settings, load_settings
from milepost.data.service import DataService
from milepost.evaluation.service import EvaluationService
from milepost.features.service import FeatureService
from milepost.governance.audit import AuditService
from milepost.governance.roles import RoleService
from milepost.models.service import ModelService
from milepost.promotion.service import PromotionService
from milepost.serving.service import DeploymentService
from milepost.stores.blobs import BlobStore, open_blob_store
from milepost.stores.metadata import MetadataStore
from milepost.tracking.service import TrackingService

if TYPE_CHECKING:
    from pathlib import Path

    from milepost.config import Source

__all__ = ["Runtime", "configure", "get_runtime", "reset"]


class Runtime:
    """Settings plus the stores and services built from them."""

    def __init__(self, resolved: ResolvedSettings) -> None:
        self.resolved = resolved
        self.settings: Settings = resolved.settings
        self.db = MetadataStore(
            self.settings.resolved_metadata_uri(),
            busy_timeout=self.settings.sqlite_busy_timeout,
            connect_timeout=self.settings.db_connect_timeout,
            statement_timeout=self.settings.db_statement_timeout,
        )
        self.blobs: BlobStore = open_blob_store(
            self.settings.resolved_artifact_uri(),
            **(
                {"endpoint_url": self.settings.s3_endpoint_url}
                if self.settings.resolved_artifact_uri().startswith("s3://")
                else {}
            ),
        )
        self.tracking = TrackingService(self.db, self.blobs, self.settings)
        self.audit = AuditService(self.db)
        self.data = DataService(self.db, self.blobs, self.settings)
        self.roles = RoleService(self.db, self.settings.actor())
        self.features = FeatureService(
            self.db, self.settings, data=self.data, tracking=self.tracking
        )
        self.models = ModelService(
            self.db,
            self.blobs,
            self.settings,
            tracking=self.tracking,
            data=self.data,
            features=self.features,
        )
        self.evaluation = EvaluationService(
            self.db, self.settings, models=self.models, data=self.data
        )
        self.promotion = PromotionService(
            self.db,
            self.settings,
            models=self.models,
            evaluation=self.evaluation,
            data=self.data,
            roles=self.roles,
        )
        self.serving = DeploymentService(
            self.db,
            self.settings,
            models=self.models,
            features=self.features,
            promotion=self.promotion,
        )

    def close(self) -> None:
        """Flush pending writes and release connections."""
        self.tracking.close()
        self.features.close()
        self.db.dispose()


_runtime: Runtime | None = None
_lock = threading.RLock()


def get_runtime() -> Runtime:
    """The process's runtime, built from the settings on first use."""
    global _runtime
    if _runtime is None:
        with _lock:
            if _runtime is None:
                _runtime = Runtime(load_settings())
    return _runtime


def configure(*, cwd: Path | None = None, **overrides: Any) -> Runtime:
    """Replace the runtime: settings resolved as usual, then ``overrides`` applied."""
    global _runtime
    if cwd is not None:
        cwd = check.local_path(cwd, "cwd", kind="dir")
    with _lock:
        resolved = load_settings(cwd=cwd)
        if overrides:
            merged = resolved.settings.model_dump() | overrides
            sources: dict[str, Source] = dict(resolved.sources)
            sources.update(dict.fromkeys(overrides, "code"))
            resolved = build_settings(merged, sources, resolved.project_file)
        old, _runtime = _runtime, Runtime(resolved)
        if old is not None:
            old.close()
        return _runtime


def _after_fork_in_child() -> None:
    # Pooled connections belong to the parent; the child opens its own.
    if _runtime is not None:
        _runtime.db.engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def reset() -> None:
    """Close the runtime; the next call builds a new one from the current settings."""
    global _runtime
    with _lock:
        old, _runtime = _runtime, None
        if old is not None:
            old.close()
