"""The no-op pipelines that ``pipelines.py`` measures (importable as ``_pipelines_noop``).

``noop10``
    Ten no-op steps in a line, each taking the previous step's integer and returning it
    plus one: the same work as the Metaflow ``FlowSpec`` in ``_pipelines_metaflow.py`` and
    the Prefect flow in ``_pipelines_prefect.py``. Each step is a recorded step run: its
    input hashed, its output stored in the artifact store (content addressed), its status
    and times written to the metadata store; ``track`` is off (no tracking run).
``noop1``
    One such step: the run's fixed cost (plan, run record, start-up of the runner), so that
    the per-step figure can be split into fixed and marginal parts.

The module imports nothing but ``milepost.pipelines``, as a user's small pipeline would
(the sweep, which needs pandas, lives in ``_pipelines_sweep.py``).
"""

from __future__ import annotations

from milepost.pipelines import pipeline, step


@step
def first(start: int) -> int:
    """The first no-op step: returns its parameter."""
    return start


@step
def inc(x: int) -> int:
    """A no-op step: the previous step's value plus one."""
    return x + 1


@pipeline(name="noop10")
def noop10(start: int = 0) -> None:
    """Ten no-op steps in a line (``first``, then ``inc`` nine times)."""
    x = first(start)
    for _ in range(9):
        x = inc(x)


@pipeline(name="noop1")
def noop1(start: int = 0) -> None:
    """One no-op step: what a run costs besides its steps."""
    first(start)
