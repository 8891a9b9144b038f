"""Your own project: ``milepost init``, ``milepost check`` and the sandbox.

- :func:`load_project` reads the ``[project]`` table of ``milepost.toml``
  (:class:`ProjectConfig`).
- :func:`check_project` validates definitions, the policy, triggers and references
  without running anything (``milepost check project``; a :class:`ProjectReport` of
  :class:`Check` rows).
- :func:`check_consistency` runs every feature view's and on-demand view's offline and
  online paths on the same entities at the same moment (``milepost check consistency``).
- :func:`sandbox` is a temporary embedded Milepost holding the project's sample data,
  features and policy (the generated integration test runs the pipeline in one).
- :mod:`milepost.project.tools`: the project's ruff, mypy and pytest (``milepost check
  lint|types|tests``); :mod:`milepost.project.scaffold` writes a new project
  (``milepost init``).

Each imports the project's modules with its ``src/`` and root first on ``sys.path``, so
a project works before ``pip install -e .``.
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
