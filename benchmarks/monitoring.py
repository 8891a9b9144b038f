"""Drift detection speed, memory and accuracy: Milepost against plain NumPy/SciPy and Evidently.

Run it from the repository root::

    .venv/bin/python benchmarks/monitoring.py           # 10k, 100k and 1M rows
    .venv/bin/python benchmarks/monitoring.py --quick   # 10k and 100k rows only

The data (generated once per size from a seeded NumPy RNG and cached in
``benchmarks/.work/monitoring-v<N>-<size>/``): a reference and a current frame of the
same number of rows, 20 numeric columns (normal, lognormal, exponential, uniform and
Poisson; two with 1% nulls) and 5 categorical ones (3 to 50 categories), six of them
shifted in the current frame by known amounts (``SHIFTS`` in ``_monitoring_worker.py``):
a 0.05-sd mean shift (the subtle one), a 0.5-sd mean shift, a 1.5x spread, a 1.3x
scale, moved category shares and a new category.

Three contenders, each in its own process, one after the other so none competes for
the two cores:

``milepost``
    ``milepost.monitoring.drift(reference, current, categorical=[...], methods=[all
    five])`` with its default thresholds (every method on every column it applies to,
    as plain computes; Milepost's statistics must equal plain's, a check).
``plain``
    A straightforward NumPy/SciPy computation written out in the worker: per numeric
    column ``scipy.stats.ks_2samp``, PSI on 10 reference-quantile bins, Wasserstein
    divided by the reference's sd and the Jensen-Shannon distance on the PSI bins; per
    categorical column ``chi2_contingency`` on the 2 x k table, PSI and Jensen-Shannon.
    Thresholds: p < 0.05 for the tests, 0.1 for every distance (Evidently's defaults).
``evidently``
    ``Report([DataDriftPreset()])`` over both datasets (Evidently picks one method per
    column: normed Wasserstein for numbers and Jensen-Shannon for categories above
    1,000 rows), in ``benchmarks/.venv-evidently`` (created on first use, Evidently
    0.7.23 and ``pandas<3``; delete the directory to reinstall), telemetry off.

Measured per size: wall time of one drift computation over all 25 columns, frames
already in memory (the median of 3 at 10k and 100k, one at 1M; Evidently once above
10k), after a warm-up call on 1,000 rows; and the peak *extra* memory: a thread in the
contender's process samples its RSS with psutil every 2 ms, and the figure is the
largest sample during the timed calls minus the RSS just before them (tracemalloc
misses NumPy's and Arrow's buffers; ``ru_maxrss`` would include loading the data, so it
is kept in the JSON only as an upper bound). The process's CPU time of the same calls is
shown beside the wall-clock ratio: on a shared machine it is the steadier figure. "Data
size" is the two frames' ``memory_usage(deep=True)`` in the Milepost process (pandas 3,
Arrow-backed strings).

Detection: which of the six shifted columns each contender and method flags, and every
method's result on the 0.05-sd column (Evidently's per-method results come from an
extra ``ValueDrift`` report on that column, not timed).

False alarms: no-drift trials of 2,000 rows per side drawn from one distribution (four
continuous numeric columns, one of them with nulls, and the five categorical columns;
the all-tied Poisson columns are left out because KS is conservative on ties). 1,000
trials for Milepost and plain (300 with ``--quick``); Evidently computes every method
through ``ValueDrift`` and takes seconds per trial, so it runs as many trials as fit in
its time budget (120 s; 60 s with ``--quick``; the table says how many). The rate is
flagged column tests over all column tests, at each contender's own default threshold.

Targets (the issue's): at the largest size, Milepost <= 1.5x the plain time, >= 25x
faster than Evidently, peak extra memory <= 2x the data size; every strongly shifted
column found; KS and chi-square false-positive rates within 3-7% over 1,000 trials; the
HTML report at 1M rows <= 2 MB (``milepost.monitoring.render_report`` of the drift
result, its UTF-8 bytes, measured at every size to show it does not grow). A missed
target prints FAIL; the exit code is 0 all the same (this is a report, not a test). The
numbers go to ``benchmarks/results/monitoring.json`` (``-quick.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _monitoring_worker import (  # noqa: E402
    CATEGORICAL,
    FPR_COLUMNS,
    MEASURED_AS,
    NUMERIC,
    SHIFTS,
    STRONG,
    SUBTLE,
)

WORK_DIR = HERE / ".work"
RESULTS_FILE = HERE / "results" / "monitoring.json"
QUICK_RESULTS_FILE = HERE / "results" / "monitoring-quick.json"
WORKER = HERE / "_monitoring_worker.py"
EVIDENTLY_VENV = HERE / ".venv-evidently"
EVIDENTLY_REQUIREMENTS = ["evidently==0.7.23", "pandas<3", "pyarrow", "psutil"]

# Bump when the generated data changes, so cached files from an older layout are not reused.
GENERATOR_VERSION = 1
SEED = 20_261_130
FPR_SEED = 1_000_000
FPR_ROWS = 2_000
ROWS = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}
MODES: dict[str, dict[str, Any]] = {
    "full": {"sizes": ["10k", "100k", "1M"], "fpr_trials": 1_000, "evidently_fpr_seconds": 120},
    "quick": {"sizes": ["10k", "100k"], "fpr_trials": 300, "evidently_fpr_seconds": 60},
}
REPETITIONS = {"10k": 3, "100k": 3, "1M": 1}
EVIDENTLY_REPETITIONS = {"10k": 3, "100k": 1, "1M": 1}

VS_PLAIN = 1.5  # Milepost time / plain time, at most
VS_EVIDENTLY = 1 / 25  # Milepost time / Evidently time, at most
MEMORY_VS_DATA = 2.0  # peak extra memory / data size, at most
FPR_RANGE = (0.03, 0.07)
FPR_TARGET_TRIALS = 1_000
REPORT_MAX_MB = 2.0
#: Milepost's and plain's statistics agree to this (relative; absolute for p-values).
STAT_TOLERANCE = 1e-6
CONTENDERS = ("milepost", "plain", "evidently")
METHODS = {
    "numeric": ["ks", "psi", "wasserstein", "jensen_shannon"],
    "categorical": ["chi_square", "psi", "jensen_shannon"],
}
HYPOTHESIS_TESTS = {"ks", "chi_square"}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without MILEPOST_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env.update(extra)
    return env


def evidently_env() -> dict[str, str]:
    """Evidently's environment: its venv first on PATH, no PYTHONPATH, telemetry off."""
    env = clean_env(
        PATH=f"{EVIDENTLY_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(EVIDENTLY_VENV),
        DO_NOT_TRACK="1",
        PYTHONWARNINGS="ignore",
    )
    env.pop("PYTHONPATH", None)
    return env


def ensure_evidently_venv() -> str:
    """The Evidently venv's python, creating the venv and installing Evidently when missing."""
    python = EVIDENTLY_VENV / "bin" / "python"
    probe = [str(python), "-c", "import evidently, pyarrow, psutil; print(evidently.__version__)"]
    if python.exists():
        done = subprocess.run(
            probe, capture_output=True, text=True, check=False, env=evidently_env()
        )
        if done.returncode == 0:
            return str(python)
    print(f"Creating {EVIDENTLY_VENV} and installing {EVIDENTLY_REQUIREMENTS[0]} (once)...")
    subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run([*pip, *EVIDENTLY_REQUIREMENTS], check=False).returncode != 0:
        print("That failed; installing the newest Evidently that installs instead...")
        subprocess.run([*pip, "evidently", *EVIDENTLY_REQUIREMENTS[1:]], check=True)
    return str(python)


def run_worker(task: str, contender: str, config: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """Run one worker process; the JSON it wrote."""
    cwd.mkdir(parents=True, exist_ok=True)
    stem = f"{task}-{contender}-{config.get('size', 'x')}"
    out = cwd / f"{stem}.json"
    config_path = cwd / f"{stem}.config.json"
    config_path.write_text(json.dumps({**config, "out": str(out)}))
    if contender == "evidently":
        python, env = str(EVIDENTLY_VENV / "bin" / "python"), evidently_env()
    else:
        python, env = sys.executable, clean_env()
    log_path = cwd / f"{stem}.log"
    with log_path.open("w") as log:
        code = subprocess.run(
            [python, str(WORKER), task, contender, str(config_path)],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=log,
            check=False,
        ).returncode
    if code != 0:
        print(log_path.read_text()[-4000:], file=sys.stderr)
        raise SystemExit(f"The {task} {contender} worker failed with exit code {code}.")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def ensure_data(sizes: list[str], tmp: Path) -> dict[str, dict[str, Any]]:
    """Reference/current Parquet files per size, generated once and cached."""
    paths = {}
    for size in sizes:
        folder = WORK_DIR / f"monitoring-v{GENERATOR_VERSION}-{size}"
        ref, cur = folder / "reference.parquet", folder / "current.parquet"
        if not (ref.exists() and cur.exists() and (folder / "facts.json").exists()):
            print(f"Generating {size} rows into {folder.relative_to(HERE.parent)}", flush=True)
            config = {"rows": ROWS[size], "seed": SEED, "dir": str(folder), "size": size}
            run_worker("generate", "plain", config, tmp)
        paths[size] = {
            "reference": str(ref),
            "current": str(cur),
            "facts": json.loads((folder / "facts.json").read_text()),
        }
    return paths


def run_drift(sizes: list[str], paths: dict[str, dict[str, Any]], tmp: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size in sizes:
        results[size] = {}
        for contender in CONTENDERS:
            reps = (EVIDENTLY_REPETITIONS if contender == "evidently" else REPETITIONS)[size]
            print(f"Drift, {size} rows: {contender} ({reps} run(s))", flush=True)
            config = {
                "reference": paths[size]["reference"],
                "current": paths[size]["current"],
                "size": size,
                "repetitions": reps,
                "per_test_columns": [SUBTLE],
            }
            results[size][contender] = run_worker("drift", contender, config, tmp)
    return results


def run_fpr(mode: dict[str, Any], tmp: Path) -> dict[str, Any]:
    results = {}
    for contender in CONTENDERS:
        evidently = contender == "evidently"
        print(f"No-drift trials: {contender}", flush=True)
        config = {
            "trials": mode["fpr_trials"],
            "min_trials": 3 if evidently else mode["fpr_trials"],
            "seconds_budget": mode["evidently_fpr_seconds"] if evidently else 1e9,
            "rows": FPR_ROWS,
            "seed": FPR_SEED,
        }
        results[contender] = run_worker("fpr", contender, config, tmp)
    return results


def _methods_flagging(rows: list[dict[str, Any]], feature: str) -> list[str]:
    return [r["method"] for r in rows if r["feature"] == feature and r["drifted"]]


def evaluate(mode_name: str, drift: dict[str, Any], fpr: dict[str, Any]) -> dict[str, Any]:
    """Targets and checks as plain data (what the tables show and the JSON keeps)."""
    largest = list(drift)[-1]
    at = drift[largest]
    mp, pl, ev = at["milepost"], at["plain"], at["evidently"]
    benchmarks = []
    vs_plain = mp["median_seconds"] / pl["median_seconds"]
    benchmarks.append(
        {
            "label": f"drift, {largest} rows, 25 columns: time vs plain NumPy/SciPy",
            "milepost": f"{mp['median_seconds']:.2f} s",
            "other": f"plain {pl['median_seconds']:.2f} s",
            "ratio": f"{vs_plain:.2f}x",
            "target": f"<= {VS_PLAIN}x",
            "passed": vs_plain <= VS_PLAIN,
        }
    )
    vs_ev = mp["median_seconds"] / ev["median_seconds"]
    benchmarks.append(
        {
            "label": f"drift, {largest} rows: time vs Evidently DataDriftPreset",
            "milepost": f"{mp['median_seconds']:.2f} s",
            "other": f"Evidently {ev['median_seconds']:.2f} s",
            "ratio": f"{1 / vs_ev:.1f}x faster",
            "target": ">= 25x faster",
            "passed": vs_ev <= VS_EVIDENTLY,
        }
    )
    mem = mp["peak_extra_mib"] / mp["data_mib"]
    benchmarks.append(
        {
            "label": f"drift, {largest} rows: peak extra memory vs the data's size",
            "milepost": f"{mp['peak_extra_mib']:.0f} MiB",
            "other": f"data {mp['data_mib']:.0f} MiB",
            "ratio": f"{mem:.2f}x",
            "target": f"<= {MEMORY_VS_DATA:g}x",
            "passed": mem <= MEMORY_VS_DATA,
        }
    )
    missed = [c for c in STRONG if not _methods_flagging(mp["rows"], c)]
    benchmarks.append(
        {
            "label": f"detection, {largest} rows: strongly shifted columns found",
            "milepost": f"{len(STRONG) - len(missed)} of {len(STRONG)}",
            "other": "missed: " + (", ".join(missed) or "none"),
            "ratio": "-",
            "target": "all",
            "passed": not missed,
        }
    )
    mfpr = fpr["milepost"]
    for key in ("numeric:ks", "categorical:chi_square"):
        tested = mfpr["tested"].get(key, 0)
        rate = mfpr["flagged"].get(key, 0) / tested if tested else float("nan")
        enough = mfpr["trials"] >= FPR_TARGET_TRIALS
        benchmarks.append(
            {
                "label": f"no-drift false positives, {key.split(':')[1]}, alpha 0.05",
                "milepost": f"{rate:.1%}",
                "other": f"{tested:,} tests in {mfpr['trials']:,} trials",
                "ratio": "-",
                "target": "3%-7% over 1,000 trials",
                "passed": enough and FPR_RANGE[0] <= rate <= FPR_RANGE[1],
            }
        )
    rep = mp.get("report") or {"bytes": None, "status": "not measured"}
    benchmarks.append(
        {
            "label": f"HTML report size, {largest} rows",
            "milepost": "TODO" if rep["bytes"] is None else f"{rep['bytes'] / 1e6:.3f} MB",
            "other": rep["status"]
            if rep["bytes"] is None
            else f"rendered in {rep['seconds']:.2f} s; sizes by rows: "
            + ", ".join(
                f"{s} {r['milepost']['report']['bytes'] / 1e3:,.0f} kB"
                for s, r in drift.items()
                if (r["milepost"].get("report") or {}).get("bytes")
            ),
            "ratio": "-",
            "target": f"<= {REPORT_MAX_MB:g} MB (at 1M rows)",
            "passed": None if rep["bytes"] is None else rep["bytes"] <= REPORT_MAX_MB * 1e6,
        }
    )
    checks = []
    for size, res in drift.items():
        plain_rows = {(r["feature"], r["method"]): r for r in res["plain"]["rows"]}
        worst: dict[str, float] = {}
        missing = 0
        for r in res["milepost"]["rows"]:
            other = plain_rows.get((r["feature"], r["method"]))
            if other is None:
                missing += 1
                continue
            for key in ("statistic", "p_value"):
                a, b = r.get(key), other.get(key)
                if a is None or b is None or math.isnan(a) or math.isnan(b):
                    continue
                gap = abs(a - b) / max(abs(b), 1e-12) if key == "statistic" else abs(a - b)
                name = f"{r['method']} {'p' if key == 'p_value' else 'stat'}"
                worst[name] = max(worst.get(name, 0.0), gap)
        bad = {k: v for k, v in worst.items() if v > STAT_TOLERANCE}
        checks.append(
            {
                "name": f"{size}: Milepost's statistics = plain's (relative; p-values absolute)",
                "detail": (
                    "largest gap " + ", ".join(f"{k} {v:.1e}" for k, v in sorted(worst.items()))
                    if worst
                    else "nothing to compare"
                )
                + (f"; {missing} Milepost rows with no plain row" if missing else ""),
                "passed": not bad and not missing and bool(worst),
            }
        )
    notes = []
    source = Path(mp["versions"]["milepost_source"])
    if not source.is_relative_to(HERE.parent):
        notes.append(f"Milepost was imported from {source} (PYTHONPATH), not this checkout.")
    if mode_name == "quick":
        notes.append("Quick mode: the targets are judged at 100k rows, not the issue's 1M.")
    return {"benchmarks": benchmarks, "checks": checks, "notes": notes}


def _fmt_stat(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    parts = []
    if row.get("statistic") is not None:
        parts.append(f"{row['statistic']:.4f}")
    p = row.get("p_value")
    if p is not None and not math.isnan(p):
        parts.append(f"p={p:.2g}")
    mark = "DRIFT" if row["drifted"] else "ok"
    return f"{' '.join(parts)} {mark}"


def report(summary: dict[str, Any], raw: dict[str, Any], meta: dict[str, Any]) -> None:
    """Print the tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]", None: "TODO"}
    v = meta["versions"]
    drift, fpr = raw["drift"], raw["fpr"]

    timing = Table(
        title=f"Drift over 25 columns (20 numeric + 5 categorical): Milepost {v['milepost']} "
        f"vs plain NumPy {v['numpy']}/SciPy {v['scipy']} vs Evidently {v['evidently']}"
    )
    for name in (
        "Rows per side",
        "Data size",
        "Milepost",
        "Plain",
        "Evidently",
        "Milepost / plain",
        "Evidently / Milepost",
        "CPU: Milepost / plain",
        "Peak extra: Milepost",
        "Plain",
        "Evidently",
        "Milepost peak / data",
    ):
        timing.add_column(name, justify="left" if name == "Rows per side" else "right")
    for size, res in drift.items():
        mp, pl, ev = res["milepost"], res["plain"], res["evidently"]
        timing.add_row(
            size,
            f"{mp['data_mib']:.0f} MiB",
            f"{mp['median_seconds']:.3f} s",
            f"{pl['median_seconds']:.3f} s",
            f"{ev['median_seconds']:.2f} s",
            f"{mp['median_seconds'] / pl['median_seconds']:.2f}x",
            f"{ev['median_seconds'] / mp['median_seconds']:.1f}x",
            f"{mp['median_cpu_seconds'] / pl['median_cpu_seconds']:.2f}x",
            f"{mp['peak_extra_mib']:.0f} MiB",
            f"{pl['peak_extra_mib']:.0f} MiB",
            f"{ev['peak_extra_mib']:.0f} MiB",
            f"{mp['peak_extra_mib'] / mp['data_mib']:.2f}x",
        )
    console.print(timing)

    largest = list(drift)[-1]
    res = drift[largest]
    det = Table(title=f"Detection at {largest} rows: the methods that flag each shifted column")
    for name in ("Column", "Shift", "Measured", "Milepost", "Plain", "Evidently (its default)"):
        det.add_column(name)
    measured = raw["data"][largest]["shifts"]
    for col, shift in SHIFTS.items():
        cells = [", ".join(_methods_flagging(res[c]["rows"], col)) or "-" for c in CONTENDERS]
        det.add_row(col, shift, MEASURED_AS[col].format(measured[col]), *cells)
    for contender in CONTENDERS:
        rows = res[contender]["rows"]
        false = sorted({r["feature"] for r in rows if r["drifted"] and r["feature"] not in SHIFTS})
        det.add_row(
            "(unshifted)",
            f"{contender}: unshifted columns flagged",
            "",
            *[", ".join(false) or "none" if c == contender else "" for c in CONTENDERS],
        )
    verdicts = []
    for contender in CONTENDERS:
        ds = res[contender].get("dataset") or {}
        if "dataset_drift" not in ds:
            verdicts.append("-")
            continue
        verdicts.append(
            f"{'DRIFT' if ds['dataset_drift'] else 'no drift'} "
            f"(drifted share {ds['drifted_share']:.0%}{', ' + ds['rule'] if 'rule' in ds else ''})"
        )
    det.add_row("(dataset)", "the dataset-level verdict", "", *verdicts)
    console.print(det)

    subtle = Table(
        title=f"The 0.05-sd column ({SUBTLE}) per method, by size (statistic, p, verdict)"
    )
    subtle.add_column("Rows")
    subtle.add_column("Method")
    for c in ("Milepost", "Plain", "Evidently"):
        subtle.add_column(c, justify="right")
    for size, res in drift.items():
        for method in METHODS["numeric"]:

            def pick(rows: list[dict[str, Any]], m: str = method) -> dict[str, Any] | None:
                return next((r for r in rows if r["feature"] == SUBTLE and r["method"] == m), None)

            subtle.add_row(
                size,
                method,
                _fmt_stat(pick(res["milepost"]["rows"])),
                _fmt_stat(pick(res["plain"]["rows"])),
                _fmt_stat(pick(res["evidently"].get("per_test", []))),
            )
    console.print(subtle)

    fpr_table = Table(
        title=f"No-drift false alarms: {FPR_ROWS:,} rows per side, columns {', '.join(FPR_COLUMNS)}"
    )
    fpr_table.add_column("Method")
    for c in CONTENDERS:
        fpr_table.add_column(f"{c.capitalize()} (threshold)", justify="right")
    fpr_table.add_column("Target")
    for kind, methods in METHODS.items():
        for method in methods:
            key = f"{kind}:{method}"
            cells = []
            for c in CONTENDERS:
                f = fpr[c]
                tested = f["tested"].get(key, 0)
                if not tested:
                    cells.append("-")
                    continue
                rate = f["flagged"].get(key, 0) / tested
                cells.append(f"{rate:.1%} ({f['thresholds'][key]:g})")
            target = "3%-7%" if method in HYPOTHESIS_TESTS else "report"
            fpr_table.add_row(key, *cells, target)
    fpr_table.add_row(
        "trials (column tests per numeric method)",
        *[f"{fpr[c]['trials']:,} ({fpr[c]['tested'].get('numeric:ks', 0):,})" for c in CONTENDERS],
        "1,000",
    )
    console.print(fpr_table)

    targets = Table(title="Targets")
    for name in ("Benchmark", "Milepost", "Compared with", "Ratio", "Target", "Result"):
        targets.add_column(name)
    for b in summary["benchmarks"]:
        targets.add_row(
            b["label"], b["milepost"], b["other"], b["ratio"], b["target"], verdict[b["passed"]]
        )
    console.print(targets)
    checks = Table(title="Checks")
    for name in ("Check", "Detail", "Result"):
        checks.add_column(name)
    for c in summary["checks"]:
        checks.add_row(c["name"], c["detail"], verdict[c["passed"]])
    console.print(checks)
    for note in summary["notes"]:
        console.print(note)
    judged = [b for b in summary["benchmarks"] if b["passed"] is not None]
    met = sum(bool(b["passed"]) for b in judged)
    colour = "green" if met == len(judged) else "red"
    console.print(
        f"[bold {colour}]{met}/{len(judged)} targets met[/] "
        f"({len(summary['benchmarks']) - len(judged)} TODO). Took {meta['elapsed_seconds']:.0f} s."
    )
    console.print(f"Results written to {meta['results_file']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows only")
    parser.add_argument(
        "--sizes", help="comma-separated sizes to run instead of the mode's (e.g. 10k)"
    )
    parser.add_argument("--fpr-trials", type=int, help="no-drift trials instead of the mode's")
    args = parser.parse_args()

    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    if load_at_start > 0.7:
        print(f"Warning: load average {load_at_start:.1f}; other work skews the figures.")
    mode_name = "quick" if args.quick else "full"
    mode = dict(MODES[mode_name])
    if args.sizes:
        mode["sizes"] = [s for s in ROWS if s in args.sizes.split(",")]
        mode_name = "custom"
    if args.fpr_trials:
        mode["fpr_trials"] = args.fpr_trials
        mode_name = "custom"
    ensure_evidently_venv()
    with tempfile.TemporaryDirectory(prefix="milepost-bench-monitoring-") as name:
        tmp = Path(name)
        paths = ensure_data(mode["sizes"], tmp)
        drift = run_drift(mode["sizes"], paths, tmp)
        fpr = run_fpr(mode, tmp)

    summary = evaluate(mode_name, drift, fpr)
    first = next(iter(drift.values()))
    versions = {
        **first["evidently"]["versions"],
        **first["milepost"]["versions"],
        "evidently_pandas": first["evidently"]["versions"]["pandas"],
        "python": platform.python_version(),
    }
    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode_name,
        "sizes": mode,
        "columns": {"numeric": NUMERIC, "categorical": CATEGORICAL, "shifts": SHIFTS},
        "versions": versions,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg()[0],
        },
        "elapsed_seconds": time.perf_counter() - started,
    }
    raw = {"data": {s: p["facts"] for s, p in paths.items()}, "drift": drift, "fpr": fpr}
    out = QUICK_RESULTS_FILE if mode_name == "quick" else RESULTS_FILE
    if mode_name == "custom":  # a partial run never replaces the recorded results
        out = WORK_DIR / "monitoring-custom.json"
    meta["results_file"] = str(out.relative_to(HERE.parent))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**meta, **summary, "raw": raw}, indent=2, default=str) + "\n")
    report(summary, raw, meta)


if __name__ == "__main__":
    main()
