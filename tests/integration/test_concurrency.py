"""Eight processes log into one store at once: no value lost, no "database is locked"."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
import sqlalchemy as sa

import milepost
from milepost import Client, RunStatus, Runtime

PROCESSES = 8
RUNS_EACH = 3
STEPS = 400


def _worker(args: tuple[str, str, int]) -> list[str]:
    uri, home, worker = args
    milepost.configure(
        metadata_uri=uri,
        home=Path(home),
        metric_flush_interval=0.01,
        metric_batch_size=64,
        user=f"worker-{worker}",
    )
    ids = []
    for r in range(RUNS_EACH):
        with milepost.start_run(experiment="concurrent", run_name=f"w{worker}-r{r}") as run:
            milepost.log_params({"worker": worker, "run": r})
            for step in range(STEPS):
                milepost.log_metric("loss", 1.0 / (step + 1), step=step)
                milepost.log_metrics({"a": step, "b": -step}, step=step)
                if step % 100 == 0:
                    milepost.set_tag("progress", str(step))
            milepost.log_text(f"worker {worker}", f"notes/{r}.txt")
        ids.append(run.run_id)
    milepost.reset()
    return ids


@pytest.mark.slow
def test_eight_processes_lose_nothing(runtime: Runtime, tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    args = [(runtime.db.uri, str(tmp_path / "home"), w) for w in range(PROCESSES)]
    with ctx.Pool(PROCESSES) as pool:
        run_ids = [rid for ids in pool.map(_worker, args) for rid in ids]
    assert len(set(run_ids)) == PROCESSES * RUNS_EACH
    with runtime.db.read() as conn:
        per_run = dict(
            conn.execute(sa.text("SELECT run_id, COUNT(*) FROM metrics GROUP BY run_id")).all()
        )
    assert per_run == dict.fromkeys(run_ids, STEPS * 3)
    c = Client()
    runs = c.search_runs("concurrent", max_results=100)
    assert len(runs) == len(run_ids)
    assert all(r.status is RunStatus.FINISHED and r.metrics["a"] == STEPS - 1 for r in runs)
    report = c.verify_audit()
    assert report.ok, report.problems
    assert report.checked == 1 + 2 * len(run_ids)  # experiment create + start/end per run
