"""Your own project: ``milepost init``, ``milepost check`` and the sandbox.

- :func:`load_project` reads the ``[project]`` table of ``milepost.toml``
  (:class:`ProjectConfig`).
- ``check_project`` validates definitions, the policy, triggers and references without
  running anything (``milepost check project``); ``check_consistency`` runs every feature
  view's offline and online paths on the same entities and times (``milepost check
  consistency``); ``sandbox`` is a temporary embedded Milepost holding the project's
  sample data, features and policy (the generated integration test uses it);
  ``scaffold`` writes a new project (``milepost init``).
"""

from __future__ import annotations

from milepost.project.check import Check, ProjectReport, check_project
from milepost.project.config import Project, ProjectConfig, load_project
from milepost.project.consistency import check_consistency
from milepost.project.sandbox import sandbox

__all__ = [
    "Check",
    "Project",
    "ProjectConfig",
    "ProjectReport",
    "check_consistency",
    "check_project",
    "load_project",
    "sandbox",
]
