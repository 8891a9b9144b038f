"""The 10-step no-op pipeline as a Prefect 3 flow (runs in ``benchmarks/.venv-prefect``).

``python _pipelines_prefect.py`` runs the flow once, as a user would: ten ``@task`` calls
in a line inside a ``@flow``, each taking the previous task's integer and returning it
plus one (the work of ``_pipelines_noop.noop10`` and ``_pipelines_metaflow.NoopFlow``).
``PREFECT_HOME`` points at a temporary directory and ``PREFECT_API_URL`` is unset, so
Prefect starts its ephemeral local API server (SQLite in ``PREFECT_HOME``) for the run
and stops it at exit; every flow run and task run is recorded there. Telemetry is off
(``DO_NOT_TRACK=1``, ``PREFECT_SERVER_ANALYTICS_ENABLED=false``); nothing reaches the
network.

``python _pipelines_prefect.py inprocess N OUT.json`` calls the flow once to warm up (the
server starts, the first calls pay for imports), then N more times in the same process,
timing each call, and writes the times (seconds) as JSON: Prefect's in-process cost per
run, server start-up excluded.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from prefect import flow, task

STEPS = 10


@task
def inc(x: int) -> int:
    """A no-op task: the previous task's value plus one."""
    return x + 1


@flow(name="noop10")
def noop10(start: int = -1) -> int:
    """Ten no-op tasks in a line."""
    x = start
    for _ in range(STEPS):
        x = inc(x)
    return x


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "inprocess":
        repetitions, out = int(sys.argv[2]), Path(sys.argv[3])
        assert noop10() == STEPS - 1  # warm-up
        times = []
        for _ in range(repetitions):
            start = time.perf_counter()
            result = noop10()
            times.append(time.perf_counter() - start)
            assert result == STEPS - 1, result
        import prefect

        out.write_text(json.dumps({"seconds": times, "version": prefect.__version__}))
        return
    print(f"x = {noop10()}")


if __name__ == "__main__":
    main()
