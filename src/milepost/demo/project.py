"""The demo's project step: ``milepost init`` writes a project, ``milepost check project``
checks it (nothing runs: fast), ``milepost check consistency`` compares its features'
offline and online paths in a sandbox, and the demo says which commands its CI runs.

The loop the demo showed, as a team keeps it in a repository: feature definitions, a
training function, a release pipeline from the retraining template, a policy, tests and
CI workflows whose steps are ``milepost`` commands.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from milepost.errors import MilepostError
from milepost.project import load_project
from milepost.project.check import check_project
from milepost.project.consistency import check_consistency
from milepost.project.scaffold import PR_COMMANDS, scaffold

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

__all__ = ["NAME", "project_step"]

#: The project the demo writes into its home.
NAME = "churn-project"


def project_step(console: Console, home: Path) -> dict[str, Any]:
    """Write a project into ``home`` and check it; what was written and checked."""
    started = time.perf_counter()
    root = home / NAME
    written = scaffold(root)
    console.print(
        f"  milepost init {NAME}: {len(written)} files in {root} (a classification "
        "project: features, train.py, a release pipeline, policy.yaml, tests, CI for "
        "GitHub and GitLab)",
        soft_wrap=True,
    )
    report = check_project(load_project(root))
    for check in report.checks:
        mark = "ok" if check.ok else "FAIL"
        console.print(f"    {mark:4} {check.name}: {check.target}", markup=False, soft_wrap=True)
    if not report.ok:
        first = report.failures[0]
        raise MilepostError(
            f"The new project failed `milepost check project`: {first.name} {first.target}: "
            f"{first.detail}",
            hint="This is a bug in the templates; please report it.",
        )
    console.print(f"  milepost check project: all {len(report.checks)} checks passed")
    # training and serving compute the same features: a sandbox built from the project's
    # sample data, every view's offline and online paths on the same rows and moment
    consistency = check_consistency(load_project(root))
    for result in consistency:
        verdict = "consistent" if result.ok else "MISMATCHES"
        console.print(
            f"  milepost check consistency: {result.view}: {result.checked} entities "
            f"({result.with_values} with values online): {verdict}",
            markup=False,
            soft_wrap=True,
        )
    if not all(r.ok for r in consistency):
        raise MilepostError(
            "The new project failed `milepost check consistency`.",
            hint="This is a bug in the templates; please report it.",
        )
    package = load_project(root).config.package
    console.print("  its pull-request CI runs: " + "; ".join(PR_COMMANDS[1:]), soft_wrap=True)
    console.print(
        "  its main branch runs the release on the team's `milepost server`: milepost "
        f"pipelines run {package}.pipeline:release (see {root / 'README.md'})",
        soft_wrap=True,
        markup=False,
    )
    console.print(f"  (this step took {time.perf_counter() - started:.1f} s)")
    return {
        "root": str(root),
        "files": [p.relative_to(root).as_posix() for p in written],
        "checks": len(report.checks),
        "ok": report.ok,
        "consistency": {r.view: (r.checked, r.with_values, r.ok) for r in consistency},
    }
