"""The project's description: the ``[project]`` table of ``milepost.toml``.

``milepost init`` writes it; ``milepost check``, the sandbox and the generated CI read
it. Everything in it is a reference (a module, a file, a name on the Milepost it runs
against), never code::

    [project]
    name = "churn-project"
    package = "churn_project"
    template = "classification"
    model = "churn"
    target = "churned"
    labels = "churn_project.labels"
    pipeline = "churn_project.pipeline:release"
    train = "churn_project.train:fit"
    sample_data = "churn_project.data:sample"
    policy = "policy.yaml"
    triggers = "triggers.yaml"
    endpoint = "churn"
    staging_endpoint = "churn-staging"

The feature definitions are the ``feature_repo`` setting (a top-level key of the same
file, so ``milepost features ...`` reads the same module).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from milepost.config import PROJECT_FILE, PROJECT_TABLE, ResolvedSettings, load_settings
from milepost.errors import ConfigError

__all__ = ["Project", "ProjectConfig", "load_project"]

_REF = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$"
_MODULE = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"


class ProjectConfig(BaseModel):
    """The ``[project]`` table (unknown keys are errors, like settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    package: str
    template: Literal["classification", "regression"] | None = None
    model: str
    target: str
    #: the dataset whose newest version holds the entity keys, ``event_timestamp``, the
    #: target and any request columns of on-demand features
    labels: str
    pipeline: str
    train: str
    #: ``module:function`` returning ``{dataset name: DataFrame}``: small generated data
    #: the sandbox, the integration test and ``check consistency`` load
    sample_data: str | None = None
    policy: str | None = "policy.yaml"
    triggers: str | None = "triggers.yaml"
    endpoint: str | None = None
    staging_endpoint: str | None = None
    unit_tests: str = "tests/unit"
    integration_tests: str = "tests/integration"

    @field_validator("package")
    @classmethod
    def _module(cls, value: str) -> str:
        import re

        if not re.fullmatch(_MODULE, value):
            raise ValueError(f"{value!r} is not an importable package name")
        return value

    @field_validator("pipeline", "train", "sample_data")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        import re

        if value is not None and not re.fullmatch(_REF, value):
            raise ValueError(f"{value!r} is not module:attr")
        return value


@dataclass(frozen=True)
class Project:
    """A project on disk: its root (the directory of ``milepost.toml``), its
    ``[project]`` table and its resolved settings."""

    root: Path
    config: ProjectConfig
    settings: ResolvedSettings

    @property
    def feature_repo(self) -> str:
        """The feature definitions: a ``.py`` path (absolute) or a module name."""
        repo = self.settings.settings.feature_repo
        if repo.endswith(".py") and not Path(repo).is_absolute():
            return str(self.root / repo)
        return repo

    def path(self, relative: str | None) -> Path | None:
        """A file the project names, resolved against its root (None stays None)."""
        return None if relative is None else self.root / relative


def load_project(start: Path | None = None) -> Project:
    """The project of the nearest ``milepost.toml`` with a ``[project]`` table.

    Args:
        start: where to look from (default: the current directory, then its parents).

    Raises:
        ConfigError: no ``milepost.toml``, no ``[project]`` table in it, or a wrong key
            or value (named, with the file).
    """
    resolved = load_settings(cwd=start)
    path = resolved.project_file
    if path is None:
        where = start or Path.cwd()
        raise ConfigError(
            f"No {PROJECT_FILE} in {where} or its parents: this is not a Milepost project.",
            hint="Create one with `milepost init DIR`, or run this from the project.",
        )
    with path.open("rb") as fh:
        table = tomllib.load(fh).get(PROJECT_TABLE)
    if not isinstance(table, dict):
        raise ConfigError(
            f"{path} has no [{PROJECT_TABLE}] table: settings only, no project description.",
            hint="`milepost init` writes one; see the README's 'Your own project' section.",
        )
    try:
        config = ProjectConfig(**table)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "?"
        raise ConfigError(
            f"{path}: [{PROJECT_TABLE}] {key}: {first['msg']}.",
            hint="Fix the value; `milepost check project` checks the whole project.",
        ) from exc
    return Project(root=path.parent, config=config, settings=resolved)
