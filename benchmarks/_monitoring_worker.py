"""The measuring half of ``benchmarks/monitoring.py``: one contender per process.

Usage: ``python _monitoring_worker.py TASK CONTENDER CONFIG.json``. TASK is ``generate``
(write the seeded reference/current Parquet files), ``drift`` (time one drift computation
over every column and sample its memory) or ``fpr`` (no-drift trials); CONTENDER is
``milepost``, ``plain`` (NumPy/SciPy written out here) or ``evidently``. It runs under
Milepost's interpreter for ``milepost`` and ``plain`` and under
``benchmarks/.venv-evidently`` for ``evidently``, so it imports only NumPy, pandas,
SciPy, psutil and the contender at the top level. The JSON answer goes to
``config["out"]``.

Memory: a thread samples this process's RSS (psutil) every ``SAMPLE_SECONDS``; the
*peak extra* memory is the largest sample during the measured calls minus the RSS
sampled just before them (frames loaded, a warm-up call on 1,000 rows done, garbage
collected). A thread gets the interpreter lock at least every switch interval (5 ms),
and NumPy's large allocations live far longer than that, so the samples see them.
``ru_maxrss`` is also reported; it includes loading the data, so it is an upper bound.
"""

from __future__ import annotations

import gc
import json
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SAMPLE_SECONDS = 0.002
#: The last call's dataset-level verdict (drifted share, drift or not), where the
#: contender gives one.
DATASET: dict[str, Any] = {}
#: Milepost's last DriftResult (for the report's size).
LAST_RESULT: list[Any] = []
MIB = 1024 * 1024

# ---------------------------------------------------------------------------------------
# Data: 20 numeric + 5 categorical columns; six columns shifted by known amounts.
# ---------------------------------------------------------------------------------------

NUMERIC = [f"n{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
#: column -> the shift applied to the current frame (what the detection table expects).
SHIFTS: dict[str, str] = {
    "n00": "mean + 0.05 sd (subtle)",
    "n01": "mean + 0.5 sd",
    "n02": "sd x 1.5 about the mean",
    "n03": "values x 1.3 (lognormal)",
    "c0": "top category 40% -> 30%, last 8% -> 18%",
    "c1": "a new category in 5% of rows",
}
SUBTLE = "n00"
STRONG = [c for c in SHIFTS if c != SUBTLE]
#: The sd of lognormal(1, 0.6), for n01's half-sd shift.
LOGNORMAL_SD = float(np.sqrt((np.exp(0.36) - 1) * np.exp(2 + 0.36)))
#: The no-drift trials use these columns: four continuous distributions, one with nulls,
#: and every categorical column (KS is conservative on tied values, so the Poisson
#: columns, which are all ties, would understate its false-positive rate).
FPR_COLUMNS = ["n00", "n01", "n02", "n03", "n18", *CATEGORICAL]
CAT_SIZES = {"c0": 5, "c1": 8, "c2": 20, "c3": 3, "c4": 50}


def _zipf(k: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1)
    return w / w.sum()


def make_frames(rows: int, seed: int, *, shift: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded reference and current frames; with ``shift=False`` both come from one
    distribution (the no-drift trials)."""
    rng = np.random.default_rng(seed)

    def numeric(n: int, shifted: bool) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for i, name in enumerate(NUMERIC):
            kind = i % 5
            if name == "n03":
                out[name] = rng.lognormal(0.0, 0.5, n)
            elif kind == 0:
                out[name] = rng.normal(10.0, 2.0, n)
            elif kind == 1:
                out[name] = rng.lognormal(1.0, 0.6, n)
            elif kind == 2:
                out[name] = rng.exponential(3.0, n)
            elif kind == 3:
                out[name] = rng.uniform(-5.0, 5.0, n)
            else:
                out[name] = rng.poisson(4.0, n).astype(np.float64)
        if shifted:
            out["n00"] += 0.05 * 2.0  # normal(10, 2)
            out["n01"] += 0.5 * LOGNORMAL_SD  # lognormal(1, 0.6)
            out["n02"] = 3.0 + (out["n02"] - 3.0) * 1.5  # exponential(3) about its mean
            out["n03"] *= 1.3  # lognormal(0, 0.5)
        for name in ("n18", "n19"):  # 1% nulls in two unshifted columns
            out[name][rng.random(n) < 0.01] = np.nan
        return out

    def categorical(n: int, shifted: bool) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name, k in CAT_SIZES.items():
            labels = np.array([f"{name}_{j}" for j in range(k)], dtype=object)
            if name == "c0":
                p = np.array([0.40, 0.25, 0.15, 0.12, 0.08])
                if shifted:
                    p = np.array([0.30, 0.25, 0.15, 0.12, 0.18])
            else:
                p = _zipf(k)
            if shifted and name == "c1":
                labels = np.append(labels, f"{name}_new")
                p = np.append(p * 0.95, 0.05)
            out[name] = labels[rng.choice(len(labels), size=n, p=p)]
        return out

    ref = pd.DataFrame({**numeric(rows, False), **categorical(rows, False)})
    cur = pd.DataFrame({**numeric(rows, shift), **categorical(rows, shift)})
    return ref, cur


# ---------------------------------------------------------------------------------------
# The plain NumPy/SciPy reference implementation.
# ---------------------------------------------------------------------------------------

PLAIN_THRESHOLDS = {
    "ks": 0.05,
    "chi_square": 0.05,
    "psi": 0.1,
    "wasserstein": 0.1,
    "jensen_shannon": 0.1,
}
P_VALUE_METHODS = {"ks", "chi_square"}
PSI_BINS = 10
EPS = 1e-4


def _proportions(counts: np.ndarray) -> np.ndarray:
    p = np.clip(counts / counts.sum(), EPS, None)
    return p / p.sum()


def plain_drift(ref: pd.DataFrame, cur: pd.DataFrame) -> list[dict[str, Any]]:
    """Per numeric column: KS (``ks_2samp``), PSI on 10 reference-quantile bins,
    Wasserstein divided by the reference's sd, Jensen-Shannon distance (base 2, so 0 to 1)
    on the PSI bins;
    per categorical column: two-sample chi-square (``chi2_contingency`` on the 2 x k
    table), PSI and Jensen-Shannon over the union of categories."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

    rows: list[dict[str, Any]] = []

    def add(col: str, kind: str, method: str, stat: float, p: float) -> None:
        thr = PLAIN_THRESHOLDS[method]
        drifted = p < thr if method in P_VALUE_METHODS else stat >= thr
        rows.append(
            {
                "feature": col,
                "kind": kind,
                "method": method,
                "statistic": float(stat),
                "p_value": float(p),
                "threshold": thr,
                "drifted": bool(drifted),
            }
        )

    for col in ref.columns:
        if col in CATEGORICAL:
            r = ref[col].value_counts()
            c = cur[col].value_counts()
            keys = r.index.union(c.index)
            rc = r.reindex(keys, fill_value=0).to_numpy(np.float64)
            cc = c.reindex(keys, fill_value=0).to_numpy(np.float64)
            chi = chi2_contingency(np.vstack([rc, cc]), correction=False)
            add(col, "categorical", "chi_square", chi.statistic, chi.pvalue)
            pr, pc = _proportions(rc), _proportions(cc)
            add(col, "categorical", "psi", np.sum((pc - pr) * np.log(pc / pr)), np.nan)
            add(col, "categorical", "jensen_shannon", jensenshannon(rc, cc, base=2), np.nan)
            continue
        x = ref[col].to_numpy(np.float64)
        y = cur[col].to_numpy(np.float64)
        x = x[np.isfinite(x)]
        y = y[np.isfinite(y)]
        ks = ks_2samp(x, y)
        add(col, "numeric", "ks", ks.statistic, ks.pvalue)
        edges = np.unique(np.quantile(x, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
        rc = np.bincount(np.searchsorted(edges, x, side="right"), minlength=edges.size + 1)
        cc = np.bincount(np.searchsorted(edges, y, side="right"), minlength=edges.size + 1)
        pr, pc = _proportions(rc.astype(np.float64)), _proportions(cc.astype(np.float64))
        add(col, "numeric", "psi", np.sum((pc - pr) * np.log(pc / pr)), np.nan)
        sd = float(np.std(x)) or 1.0
        add(col, "numeric", "wasserstein", wasserstein_distance(x, y) / sd, np.nan)
        add(col, "numeric", "jensen_shannon", jensenshannon(rc, cc, base=2), np.nan)
    return rows


# ---------------------------------------------------------------------------------------
# Milepost
# ---------------------------------------------------------------------------------------


def milepost_drift(ref: pd.DataFrame, cur: pd.DataFrame) -> list[dict[str, Any]]:
    """``milepost.monitoring.drift(ref, cur, categorical=..., methods=<all five>)``'s
    per-feature rows: every method on every column it applies to, as plain computes,
    with Milepost's default thresholds."""
    from milepost.monitoring import drift

    result = drift(ref, cur, categorical=CATEGORICAL, methods=list(PLAIN_THRESHOLDS))
    LAST_RESULT[:] = [result]
    DATASET["drifted_share"] = float(result.drifted_share)
    DATASET["dataset_drift"] = bool(result.dataset_drift)
    keep = ["feature", "kind", "method", "statistic", "p_value", "threshold", "drifted"]
    out: list[dict[str, Any]] = result.features[keep].to_dict("records")
    for row in out:
        row["drifted"] = bool(row["drifted"])
        for key in ("statistic", "p_value", "threshold"):
            row[key] = None if row[key] is None else float(row[key])
    return out


def milepost_report_size() -> dict[str, Any]:
    """The self-contained HTML report of the last drift result
    (``milepost.monitoring.render_report``): its UTF-8 bytes and render time."""
    from milepost.monitoring import render_report

    start = time.perf_counter()
    html = render_report(LAST_RESULT[0], title="Benchmark drift report")
    return {
        "bytes": len(html.encode("utf-8")),
        "seconds": time.perf_counter() - start,
        "status": "measured",
    }


# ---------------------------------------------------------------------------------------
# Evidently (runs in benchmarks/.venv-evidently).
# ---------------------------------------------------------------------------------------

EVIDENTLY_METHODS = {  # our name -> Evidently's stattest name
    "ks": "ks",
    "chi_square": "chisquare",
    "psi": "psi",
    "wasserstein": "wasserstein",
    "jensen_shannon": "jensenshannon",
}
EVIDENTLY_NUMERIC = ["ks", "psi", "wasserstein", "jensen_shannon"]
EVIDENTLY_CATEGORICAL = ["chi_square", "psi", "jensen_shannon"]


def _evidently_name(label: str) -> tuple[str, bool]:
    """Our method name for an Evidently method label, and whether it is a p-value."""
    label = label.lower()
    for ours, keys in (
        ("ks", ("k-s", "ks")),
        ("chi_square", ("chi-square", "chisquare")),
        ("psi", ("psi",)),
        ("wasserstein", ("wasserstein",)),
        ("jensen_shannon", ("jensen-shannon", "jensenshannon")),
    ):
        if any(label.startswith(k) for k in keys):
            return ours, ours in P_VALUE_METHODS
    return label, "p_value" in label


def _evidently_run(
    ref: pd.DataFrame, cur: pd.DataFrame, metrics: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Evidently's ``DataDriftPreset()`` (or the given metrics), as per-feature rows."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[c for c in NUMERIC if c in ref.columns],
        categorical_columns=[c for c in CATEGORICAL if c in ref.columns],
    )
    snapshot = Report(metrics or [DataDriftPreset()]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    rows = []
    for m in snapshot.dict()["metrics"]:
        config = m["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
            DATASET["drifted_share"] = share
            DATASET["drifted_count"] = float(m["value"]["count"])
            DATASET["dataset_drift"] = share >= float(config["drift_share"])
            DATASET["rule"] = f"share >= {config['drift_share']}"
        if not config["type"].endswith("ValueDrift"):
            continue
        label = config["method"]
        method, is_p = _evidently_name(label)
        value = float(m["value"])
        thr = float(config["threshold"])
        col = config["column"]
        rows.append(
            {
                "feature": col,
                "kind": "categorical" if col in CATEGORICAL else "numeric",
                "method": method,
                "evidently_method": label,
                "statistic": None if is_p else value,
                "p_value": value if is_p else None,
                "threshold": thr,
                "drifted": value < thr if is_p else value >= thr,
            }
        )
    return rows


def evidently_drift(ref: pd.DataFrame, cur: pd.DataFrame) -> list[dict[str, Any]]:
    return _evidently_run(ref, cur)


def evidently_every_method(
    ref: pd.DataFrame, cur: pd.DataFrame, columns: list[str] | None = None
) -> list[dict[str, Any]]:
    """Every method of the table on every (or the given) column, in one Report."""
    from evidently.metrics import ValueDrift

    metrics = []
    for col in columns or list(ref.columns):
        methods = EVIDENTLY_CATEGORICAL if col in CATEGORICAL else EVIDENTLY_NUMERIC
        metrics += [ValueDrift(column=col, method=EVIDENTLY_METHODS[m]) for m in methods]
    return _evidently_run(ref, cur, metrics)


# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------


class RssSampler:
    """Samples this process's RSS in a thread; ``peak`` is the largest sample."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return int(self._proc.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _versions(contender: str) -> dict[str, str]:
    import scipy

    out = {"numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__}
    if contender == "evidently":
        import evidently

        out["evidently"] = evidently.__version__
    elif contender == "milepost":
        import milepost

        out["milepost"] = milepost.__version__
        out["milepost_source"] = str(Path(milepost.__file__).parent)
    return out


FUNCS = {"milepost": milepost_drift, "plain": plain_drift, "evidently": evidently_drift}


def measured_shifts(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, float]:
    """The shifts as generated, measured on the frames (what ``SHIFTS`` promises)."""
    out = {}
    for col in ("n00", "n01"):
        out[col] = float((cur[col].mean() - ref[col].mean()) / ref[col].std())
    out["n02"] = float(cur["n02"].std() / ref["n02"].std())
    out["n03"] = float(cur["n03"].mean() / ref["n03"].mean())
    shares = cur["c0"].value_counts(normalize=True) - ref["c0"].value_counts(normalize=True)
    out["c0"] = float(shares.abs().max())
    out["c1"] = float((cur["c1"] == "c1_new").mean())
    return out


#: How each measured shift reads (the unit of ``measured_shifts``).
MEASURED_AS = {
    "n00": "mean shift {:+.3f} sd",
    "n01": "mean shift {:+.3f} sd",
    "n02": "sd ratio {:.3f}",
    "n03": "mean ratio {:.3f}",
    "c0": "largest share change {:.3f}",
    "c1": "new category share {:.3f}",
}


def task_generate(config: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    ref, cur = make_frames(config["rows"], config["seed"])
    out = Path(config["dir"])
    out.mkdir(parents=True, exist_ok=True)
    ref.to_parquet(out / "reference.parquet", index=False)
    cur.to_parquet(out / "current.parquet", index=False)
    facts = {"rows": config["rows"], "seed": config["seed"], "shifts": measured_shifts(ref, cur)}
    (out / "facts.json").write_text(json.dumps(facts))
    return {"seconds": time.perf_counter() - start}


def task_drift(contender: str, config: dict[str, Any]) -> dict[str, Any]:
    """Time ``repetitions`` drift computations over every column; sample memory."""
    func = FUNCS[contender]
    ref = pd.read_parquet(config["reference"])
    cur = pd.read_parquet(config["current"])
    data_mib = (ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum()) / MIB
    func(ref.iloc[:1000], cur.iloc[:1000])  # warm-up: imports, lazy loading, caches
    gc.collect()
    times, cpu = [], []
    with RssSampler() as sampler:
        baseline = sampler.rss()
        rows: list[dict[str, Any]] = []
        for _ in range(config["repetitions"]):
            start, start_cpu = time.perf_counter(), time.process_time()
            rows = func(ref, cur)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    extra: dict[str, Any] = {}
    if contender == "milepost":
        extra["report"] = milepost_report_size()
    if contender == "evidently" and config.get("per_test_columns"):
        start = time.perf_counter()
        extra["per_test"] = evidently_every_method(ref, cur, config["per_test_columns"])
        extra["per_test_seconds"] = time.perf_counter() - start
    return {
        "contender": contender,
        "versions": _versions(contender),
        "seconds": times,
        "median_seconds": statistics.median(times),
        "cpu_seconds": cpu,
        "median_cpu_seconds": statistics.median(cpu),
        "baseline_mib": baseline / MIB,
        "peak_extra_mib": (sampler.peak - baseline) / MIB,
        "maxrss_extra_mib": _maxrss_mib() - baseline / MIB,
        "data_mib": float(data_mib),
        "rows": rows,
        "dataset": dict(DATASET),
        **extra,
    }


def task_fpr(contender: str, config: dict[str, Any]) -> dict[str, Any]:
    """No-drift trials: how often each method flags a column that did not drift."""
    func = evidently_every_method if contender == "evidently" else FUNCS[contender]
    budget = config["seconds_budget"]
    flagged: dict[str, int] = {}
    by_column: dict[str, int] = {}
    tested: dict[str, int] = {}
    any_flag: dict[str, int] = {}
    thresholds: dict[str, float] = {}
    start = time.perf_counter()
    trials = 0
    for trial in range(config["trials"]):
        if trials >= config["min_trials"] and time.perf_counter() - start > budget:
            break
        ref, cur = make_frames(config["rows"], config["seed"] + trial, shift=False)
        ref, cur = ref[FPR_COLUMNS], cur[FPR_COLUMNS]
        seen: set[str] = set()
        for row in func(ref, cur):
            key = f"{row['kind']}:{row['method']}"
            tested[key] = tested.get(key, 0) + 1
            thresholds[key] = row["threshold"]
            if row["drifted"]:
                flagged[key] = flagged.get(key, 0) + 1
                col = f"{row['feature']}:{row['method']}"
                by_column[col] = by_column.get(col, 0) + 1
                seen.add(key)
        for key in seen:
            any_flag[key] = any_flag.get(key, 0) + 1
        trials += 1
    return {
        "contender": contender,
        "versions": _versions(contender),
        "trials": trials,
        "rows": config["rows"],
        "seconds": time.perf_counter() - start,
        "tested": tested,
        "flagged": flagged,
        "trials_with_any_flag": any_flag,
        "flagged_by_column": by_column,
        "thresholds": thresholds,
    }


def main() -> None:
    task, contender, config_path = sys.argv[1:4]
    config = json.loads(Path(config_path).read_text())
    if task == "generate":
        result = task_generate(config)
    elif task == "drift":
        result = task_drift(contender, config)
    elif task == "fpr":
        result = task_fpr(contender, config)
    else:
        raise SystemExit(f"unknown task {task!r}")
    Path(config["out"]).write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
