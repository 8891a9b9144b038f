"""`milepost init [DIR]`: a new project with features, training, a pipeline, a policy,
tests and CI workflows (see :mod:`milepost.project.scaffold`)."""

from __future__ import annotations


def init() -> None:
    """Create a new Milepost project (not written yet)."""
    raise NotImplementedError
