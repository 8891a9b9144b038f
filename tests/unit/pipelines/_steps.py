"""Steps and pipelines the pipeline tests run (importable, so worker processes load them)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pandas as pd

from milepost.pipelines.dag import grid, pipeline, step

log = logging.getLogger("tests.pipelines")

#: Incremented in each process that runs ``counted`` (tests read a file instead).
CALLS_FILE = "calls.txt"


def _wait_for(path: Path, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.01)
    return False


@step
def load(rows: int) -> pd.DataFrame:
    print(f"loading {rows} rows")
    log.warning("loaded %d rows", rows)
    return pd.DataFrame({"x": list(range(rows)), "y": [i % 2 for i in range(rows)]})


@step
def total(df: pd.DataFrame) -> int:
    return int(df["x"].sum())


@step
def scale(df: pd.DataFrame, c: float = 1.0) -> float:
    return float(df["x"].mean() * c)


@step
def best(scores: list[float]) -> float:
    return max(scores)


@step
def split(n: int) -> tuple[int, str]:
    return n * 2, f"n={n}"


@step
def describe(doubled: int, label: str) -> str:
    return f"{label}:{doubled}"


@step
def pid() -> int:
    return os.getpid()


@step
def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


@step
def after(x: int) -> int:
    return x + 1


@pipeline
def simple(rows: int = 10) -> None:
    df = load(rows)
    total(df)


@pipeline
def fan(rows: int = 10, cs: list[float] | None = None) -> None:
    df = load(rows)
    trials = scale.map(df=df, c=cs or [0.5, 1.0, 2.0])
    best(trials)


@pipeline
def tuples(n: int = 3) -> None:
    doubled, label = split(n)
    describe(doubled, label)


@pipeline
def failing(x: int = 1) -> None:
    bad = boom(x)
    after(bad)
    pid()


_ = grid
