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


@step(retries=3, retry_on=(ConnectionError,), backoff=0.5)
def flaky(counter: str, fails: int) -> int:
    """Fails with ConnectionError ``fails`` times (counted in a file), then succeeds."""
    path = Path(counter)
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    if n <= fails:
        raise ConnectionError(f"attempt {n} failed")
    return n


@step(retries=3, retry_on=(ConnectionError,))
def wrong_kind(counter: str) -> int:
    path = Path(counter)
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    raise KeyError("not transient")


@step(timeout=1.0)
def hang(pid_file: str) -> int:
    """Writes its pid, then waits for a file nobody creates (stopped by the timeout)."""
    Path(pid_file).write_text(str(os.getpid()))
    _wait_for(Path(pid_file + ".never"), seconds=120)
    Path(pid_file + ".done").write_text("done")  # only seen where the call is not killed
    return 0


@step
def handshake(mine: str, other: str) -> int:
    """Creates ``mine`` and waits for ``other``: two of these finish only in parallel."""
    Path(mine).write_text("here")
    if not _wait_for(Path(other), seconds=30):
        raise TimeoutError(f"{other} never appeared: the steps did not run in parallel")
    return os.getpid()


@step
def busy(n: int) -> int:
    """CPU work that takes tens of milliseconds (no waiting)."""
    return sum(range(n))


@step(track=True)
def trial(c: float, label: str = "x") -> float:
    import milepost

    milepost.log_metric("score", c * 2)
    return c * 2


@step
def starts_run(c: float) -> str:
    import milepost

    with milepost.start_run(run_name="inner") as run:
        milepost.log_param("c", c)
    return run.run_id


@pipeline
def retrying(counter: str, fails: int = 2) -> None:
    flaky(counter, fails)


@pipeline
def not_transient(counter: str) -> None:
    wrong_kind(counter)


@pipeline
def timing_out(pid_file: str) -> None:
    after(hang(pid_file))


@pipeline
def parallel(a: str, b: str) -> None:
    handshake(a, b)
    handshake(b, a)


@pipeline(name="trials")
def tracked(cs: list[float]) -> None:
    best(trial.map(c=cs))
    starts_run(1.5)


@step
def meet(folder: str, i: int, quorum: int = 2) -> int:
    """Marks trial ``i`` started, waits until ``quorum`` trials have: only finishes when
    that many run at the same time. Returns the process id."""
    Path(folder, str(i)).write_text("started")
    deadline = time.monotonic() + 30
    while len(list(Path(folder).iterdir())) < quorum:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(list(Path(folder).iterdir()))} trials ran at once")
        time.sleep(0.01)
    return os.getpid()


@step
def count(pids: list[int]) -> int:
    return len(set(pids))


@pipeline
def spread(folder: str, n: int = 4) -> None:
    count(meet.map(folder=folder, i=list(range(n))))


@step
def signal_and_wait(started: str, go: str) -> int:
    print("from the step")
    Path(started).write_text("started")
    if not _wait_for(Path(go), seconds=30):
        raise TimeoutError(f"{go} never appeared")
    return 1


@pipeline
def waiting(started: str, go: str) -> None:
    signal_and_wait(started, go)


@step
def dies(code: int) -> int:
    os._exit(code)


@pipeline
def dying(code: int = 3) -> None:
    dies(code)
    pid()


@pipeline
def retry_beside_failure(counter: str, x: int = 1) -> None:
    flaky(counter, 5)
    boom(x)


@pipeline
def queued(n: int = 3_000_000) -> None:
    """Three independent busy steps: on two workers one waits for a free worker."""
    busy(n)
    busy(n + 1)
    busy(n + 2)
