"""Step functions and pipelines for the service and CLI tests (importable by ref, also
from a ``milepost pipelines run`` subprocess: ``tests.unit.pipelines.records_steps:numbers``).

``check`` fails while the file named by its ``flag`` parameter exists: a test creates
the file, sees the run fail, removes it and resumes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from milepost.pipelines import pipeline, step


@step
def load(rows: int) -> list[int]:
    print(f"loading {rows} rows")
    return list(range(rows))


@step
def total(values: list[int]) -> int:
    return sum(values)


@step
def check(value: int, flag: str) -> int:
    print(f"checking {value}")
    print("about to look at the flag", file=sys.stderr)
    if Path(flag).exists():
        raise RuntimeError(f"flag file {flag} exists")
    return value * 2


@pipeline
def numbers(rows: int = 5, flag: str = "fail.flag") -> None:
    values = load(rows)
    checked = check(total(values), flag)
    del checked


not_a_pipeline = 42


@step(track=True)
def fit(value: int) -> float:
    import milepost

    milepost.log_metric("score", value / 10)
    return value / 10


@pipeline
def tracked(rows: int = 3) -> None:
    fit(total(load(rows)))


@step
def gate(flag: Path, sizes: tuple[int, int]) -> int:
    if flag.exists():
        raise RuntimeError(f"flag file {flag} exists")
    return sizes[0] + sizes[1]


@pipeline
def typed(flag: Path, sizes: tuple[int, int] = (1, 2)) -> None:
    gate(flag, sizes)
