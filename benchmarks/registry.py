"""Model registry speed: Milepost against MLflow, measured in the same run on the same machine.

Run it from the repository root::

    .venv/bin/python benchmarks/registry.py           # 30 repetitions, under a minute
    .venv/bin/python benchmarks/registry.py --quick   # 8 repetitions, about 20 s

Both tools log the same scikit-learn pipeline: a ``ColumnTransformer`` (``StandardScaler``
on 7 numeric columns, ``OneHotEncoder`` on 3 categorical ones) before a
``LogisticRegression``, fitted on 5,000 rows of a seeded synthetic churn frame that
``make_frame`` below generates identically in both processes. Both run on SQLite, each in
a fresh temporary directory and its own Python process, one after the other. Every time
is the median of N repetitions after one warm-up call, and every measured write makes a
real change (a new version, an alias moved to another version, a fresh version moved
from None to Staging).

``log_model`` with a signature
    ``milepost.log_model(pipe, "churn", input_example=X.iloc[:5])`` inside
    ``milepost.start_run``, which saves the model *and* registers a new version, against
    ``mlflow.sklearn.log_model(pipe, name="model", input_example=X.iloc[:5])``, which only
    saves it. MLflow is timed with its default requirement inference and with explicit
    ``pip_requirements``. Target: <= 100 ms.
register
    Milepost's registration step inside ``log_model`` (``store.add_version`` with the
    values a real version has, then ``get_version``) against ``mlflow.register_model``.
    Target: <= 1/3 of MLflow. The raw inserts (``add_version`` alone against
    ``MlflowClient().create_model_version``) and the whole path to a registered version
    (Milepost ``log_model`` against MLflow ``log_model`` + ``register_model``) are reported
    too.
set alias
    ``rt.models.set_alias`` against ``MlflowClient().set_registered_model_alias``.
    Target: <= 1/3 of MLflow.
stage transition
    ``rt.models.transition`` (the audited stage change) and ``rt.promotion.promote`` with
    no policy (the user-facing workflow: policy lookup, gates, a recorded request) against
    ``MlflowClient().transition_model_version_stage`` (deprecated since MLflow 2.9, still
    there in 3.x). Target: each <= 1/3 of MLflow.
load by alias
    ``milepost.load_model("models:/churn@champion")`` against
    ``mlflow.sklearn.load_model`` (and, reported, ``mlflow.pyfunc.load_model``), plus a
    1-row ``predict`` on each freshly loaded model. Target: <= MLflow.

MLflow is never installed into Milepost's environment: the first run creates
``benchmarks/.venv-mlflow`` (shared with ``tracking.py``) with MLflow 3 and this
environment's scikit-learn and skops versions, and ``benchmarks/_mlflow_registry_worker.py``
runs there with telemetry disabled. It imports ``make_frame`` and ``make_pipeline`` from
this file, so both tools train exactly the same model. The Milepost half is this script
started again with ``--milepost-worker``.

The table is printed and the numbers are written to ``benchmarks/results/registry.json``.
A missed target is reported as FAIL; the exit code is 0 all the same (this is a report,
not a test).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = HERE / ".venv-mlflow"
MLFLOW_WORKER = HERE / "_mlflow_registry_worker.py"
RESULTS_FILE = HERE / "results" / "registry.json"

MODEL_NAME = "churn"
ALIAS = "champion"
NUMERIC = [f"num_{i}" for i in range(7)]
CATEGORICAL = {
    "plan": ["basic", "standard", "premium", "family"],
    "region": ["north", "south", "east", "west", "central"],
    "channel": ["web", "app", "store"],
}
TRAIN_ROWS = 5_000
SEED = 7
CHECK_ROWS = 200  # predictions compared between the tools and with the in-memory model
EXAMPLE_ROWS = 5

SIZES: dict[str, dict[str, int]] = {
    # repetitions: every fast operation; default_log_repetitions: MLflow's log_model with
    # requirement inference, which takes seconds per call.
    "full": {"repetitions": 30, "default_log_repetitions": 5},
    "quick": {"repetitions": 8, "default_log_repetitions": 2},
}

LOG_MODEL_TARGET_MS = 100.0
REGISTRY_RATIO = 3.0  # register, alias and stage changes: <= 1/3 of MLflow's time


# -- the data and model both tools log (imported by the MLflow worker too) ---------------


def make_frame(rows: int = TRAIN_ROWS, seed: int = SEED) -> tuple[Any, Any]:
    """A seeded churn-like frame: 7 float columns, 3 string columns and a 0/1 target."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {c: rng.normal(size=rows) for c in NUMERIC}
    for column, levels in CATEGORICAL.items():
        data[column] = rng.choice(levels, size=rows)
    frame = pd.DataFrame(data)
    score = (
        0.8 * frame["num_0"]
        - 0.5 * frame["num_1"]
        + 0.3 * frame["num_2"] * frame["num_3"]
        + (frame["plan"] == "basic") * 0.7
        - (frame["channel"] == "app") * 0.4
        + rng.normal(scale=0.8, size=rows)
    )
    target = pd.Series((score > 0.3).astype(np.int64), name="churned")
    return frame, target


def make_pipeline() -> Any:
    """Scaling and one-hot encoding before a logistic regression (unfitted)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
        ]
    )
    return Pipeline([("features", features), ("model", LogisticRegression(max_iter=1_000))])


def frame_fingerprint(frame: Any, target: Any) -> str:
    """SHA-256 of the frame's and target's row hashes (both workers must see the same)."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(target, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def summarize(seconds: list[float]) -> dict[str, Any]:
    """Milliseconds: the median and every repetition."""
    ms = [s * 1000 for s in seconds]
    return {"median_ms": statistics.median(ms), "times_ms": ms}


# -- the Milepost half (runs in its own process) ----------------------------------------

# Columns of a version row that the registry sets itself; the rest is what log_model passes.
_SET_BY_REGISTRY = {"version_id", "model_id", "version", "stage", "created_at", "stage_changed_at"}


def milepost_worker(config_path: Path) -> None:
    """Run the Milepost half; ``MILEPOST_HOME`` was set by the parent before the import."""
    import milepost

    config = json.loads(config_path.read_text())
    n = config["repetitions"]
    results: dict[str, Any] = {"version": milepost.__version__}
    X, y = make_frame()
    pipe = make_pipeline().fit(X, y)
    example = X.iloc[:EXAMPLE_ROWS]
    results["data_fingerprint"] = frame_fingerprint(X, y)
    results["reference_predictions"] = pipe.predict(X.iloc[:CHECK_ROWS]).tolist()
    rt = milepost.get_runtime()

    def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
        start = time.perf_counter()
        out = call(*args, **kwargs)
        return out, time.perf_counter() - start

    print("log_model (save + register)", flush=True)
    log_s, logged = [], []
    for _ in range(n + 1):  # the first call is the warm-up (and the cold start)
        with milepost.start_run(experiment="bench"):
            mv, seconds = timed(milepost.log_model, pipe, MODEL_NAME, input_example=example)
        log_s.append(seconds)
        logged.append(mv.version)
    results["cold_log_model_ms"] = log_s[0] * 1000
    results["log_model"] = summarize(log_s[1:])

    print("register (the registry insert of log_model, then get_version)", flush=True)
    import sqlalchemy as sa

    from milepost.stores.schema import model_versions

    last = rt.models.get_version(MODEL_NAME, logged[-1])
    with rt.db.read() as conn:  # the stored columns of a real version, to insert again
        row = (
            conn.execute(
                sa.select(model_versions).where(model_versions.c.version_id == last.version_id)
            )
            .mappings()
            .one()
        )
    values = {k: v for k, v in row.items() if k not in _SET_BY_REGISTRY}
    insert_s, register_s, added = [], [], []
    for _ in range(n + 1):
        start = time.perf_counter()
        version = rt.models.store.add_version(MODEL_NAME, values, {}, actor=rt.models.actor)
        inserted = time.perf_counter()
        rt.models.get_version(MODEL_NAME, version)
        insert_s.append(inserted - start)
        register_s.append(time.perf_counter() - start)
        added.append(version)
    results["register"] = summarize(register_s[1:])
    results["register_insert"] = summarize(insert_s[1:])

    print("set alias", flush=True)
    alias_s = [timed(rt.models.set_alias, MODEL_NAME, ALIAS, v)[1] for v in logged]
    results["set_alias"] = summarize(alias_s[1:])

    print("stage transition (ModelService.transition, PromotionService.promote)", flush=True)
    transition_s = [timed(rt.models.transition, MODEL_NAME, v, "Staging")[1] for v in logged]
    results["transition"] = summarize(transition_s[1:])
    promote_s, statuses = [], []
    for v in added:
        request, seconds = timed(rt.promotion.promote, MODEL_NAME, v, "Staging")
        promote_s.append(seconds)
        statuses.append(request.status)
    results["promote"] = summarize(promote_s[1:])
    results["promote_statuses"] = sorted(set(statuses))

    print("load by alias, predict one row", flush=True)
    uri = f"models:/{MODEL_NAME}@{ALIAS}"
    load_s, predict_s = [], []
    for _ in range(n + 1):
        loaded, seconds = timed(milepost.load_model, uri)
        load_s.append(seconds)
        predict_s.append(timed(loaded.predict, X.iloc[:1])[1])
    results["load"] = summarize(load_s[1:])
    results["predict_one"] = summarize(predict_s[1:])

    versions = rt.models.versions(MODEL_NAME)
    results["check"] = {
        "versions": len(versions),
        "staging": sum(v.stage == "Staging" for v in versions),
        "alias_version": rt.models.resolve(uri).version,
        "expected_alias_version": logged[-1],
        "loaded_version": loaded.version.version,
        "predictions": loaded.predict(X.iloc[:CHECK_ROWS]).tolist(),
    }
    Path(config["out"]).write_text(json.dumps(results))


# -- the driver ---------------------------------------------------------------------------


def _installed(python: str, modules: list[str]) -> dict[str, str] | None:
    """``{module: __version__}`` as seen by ``python``, or None when any is missing."""
    code = (
        "import importlib, json, sys; "
        "print(json.dumps({m: importlib.import_module(m).__version__ for m in sys.argv[1:]}))"
    )
    done = subprocess.run(
        [python, "-c", code, *modules], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return None
    versions: dict[str, str] = json.loads(done.stdout)
    return versions


def ensure_mlflow_venv() -> str:
    """The MLflow venv's python, with MLflow 3 and our scikit-learn and skops versions.

    Creates the venv when missing (a few minutes, once) and pins scikit-learn and skops
    to the versions in this environment, so both tools fit and save the same model.
    """
    ours = _installed(sys.executable, ["sklearn", "skops"])
    if ours is None:
        raise SystemExit(
            "This benchmark needs scikit-learn and skops: pip install 'milepost[models]'"
        )
    wanted = [f"scikit-learn=={ours['sklearn']}", f"skops=={ours['skops']}"]
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists():
        print(f"Creating {MLFLOW_VENV} and installing mlflow>=3 (takes a few minutes, once)...")
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    theirs = _installed(str(python), ["mlflow", "sklearn", "skops"])
    if theirs is None or (theirs["sklearn"], theirs["skops"]) != (ours["sklearn"], ours["skops"]):
        print(f"Installing mlflow>=3, {' and '.join(wanted)} into {MLFLOW_VENV}...")
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "mlflow>=3",
                *wanted,
            ],
            check=True,
        )
    return str(python)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any MILEPOST_* or MLFLOW_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MILEPOST_", "MLFLOW_"))}
    env.update(extra)
    return env


def run_worker(label: str, cmd: list[str], *, env: dict[str, str], cwd: Path) -> float:
    """Run a worker, echoing its progress lines; returns its wall time in seconds."""
    log_path = cwd / "stderr.log"
    start = time.perf_counter()
    with log_path.open("w") as err:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"  [{label}] {line.rstrip()}", flush=True)
        code = proc.wait()
    if code != 0:
        tail = log_path.read_text().splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"The {label} worker failed with exit code {code} (stderr above).")
    return time.perf_counter() - start


# (key, label, Milepost key, MLflow key, kind); kind: "log" (<= 100 ms), "ratio"
# (<= 1/3 of MLflow), "load" (<= MLflow) or "info" (no target).
ROWS = [
    ("log_model", "log_model with signature", "log_model", "log_model_default", "log"),
    (
        "log_model_explicit",
        "  vs MLflow with explicit pip_requirements",
        "log_model",
        "log_model_explicit",
        "info",
    ),
    (
        "log_and_register",
        "log_model + register (to a registered version)",
        "log_model",
        "log_and_register",
        "info",
    ),
    ("register", "register a version", "register", "register", "ratio"),
    (
        "register_insert",
        "  raw insert: add_version vs create_model_version",
        "register_insert",
        "register_insert",
        "info",
    ),
    ("set_alias", "set alias", "set_alias", "set_alias", "ratio"),
    ("transition", "stage transition None -> Staging", "transition", "transition", "ratio"),
    ("promote", "  via promote() (no policy)", "promote", "transition", "ratio"),
    ("load", "load by alias", "load", "load_sklearn", "load"),
    ("load_pyfunc", "  vs mlflow.pyfunc.load_model", "load", "load_pyfunc", "info"),
    ("predict", "predict 1 row after load", "predict_one", "predict_one_sklearn", "info"),
    (
        "predict_pyfunc",
        "  vs the pyfunc model's predict",
        "predict_one",
        "predict_one_pyfunc",
        "info",
    ),
    ("cold_log_model", "first log_model in a fresh process", "cold", "cold", "info"),
]


def _median(raw: dict[str, Any], key: str) -> float:
    if key == "cold":
        return float(raw["cold_log_model_ms"])
    return float(raw[key]["median_ms"])


def evaluate(mp: dict[str, Any], ml: dict[str, Any], sizes: dict[str, int]) -> dict[str, Any]:
    """Targets and checks as plain data (what the table shows and the JSON keeps)."""
    benchmarks = []
    for name, label, mp_key, ml_key, kind in ROWS:
        mp_ms, ml_ms = _median(mp, mp_key), _median(ml, ml_key)
        if kind == "log":
            target, passed = f"<= {LOG_MODEL_TARGET_MS:g} ms", mp_ms <= LOG_MODEL_TARGET_MS
        elif kind == "ratio":
            target, passed = f"<= 1/{REGISTRY_RATIO:g} MLflow", mp_ms * REGISTRY_RATIO <= ml_ms
        elif kind == "load":
            target, passed = "<= MLflow", mp_ms <= ml_ms
        else:
            target, passed = "-", None
        benchmarks.append(
            {
                "name": name,
                "label": label,
                "unit": "ms",
                "milepost": mp_ms,
                "mlflow": ml_ms,
                "ratio": ml_ms / mp_ms,
                "target": target,
                "passed": passed,
            }
        )
    n = sizes["repetitions"]
    mpc, mlc = mp["check"], ml["check"]
    checks = [
        {
            "name": "same training data in both processes (SHA-256 of the rows)",
            "detail": mp["data_fingerprint"][:12],
            "passed": mp["data_fingerprint"] == ml["data_fingerprint"],
        },
        {
            "name": f"model loaded by alias predicts as fitted, {CHECK_ROWS} rows (Milepost)",
            "detail": f"{sum(mpc['predictions'])} positives",
            "passed": mpc["predictions"] == mp["reference_predictions"],
        },
        {
            "name": f"model loaded by alias predicts as fitted, {CHECK_ROWS} rows (MLflow)",
            "detail": f"{sum(mlc['predictions'])} positives",
            "passed": mlc["predictions"] == ml["reference_predictions"]
            and mlc["pyfunc_predictions"] == ml["reference_predictions"],
        },
        {
            "name": "both tools' models predict the same",
            "detail": f"{CHECK_ROWS} rows",
            "passed": mpc["predictions"] == mlc["predictions"],
        },
        {
            "name": "alias resolves to the last version set (Milepost / MLflow)",
            "detail": f"v{mpc['alias_version']} / v{mlc['alias_version']}",
            "passed": mpc["alias_version"] == mpc["expected_alias_version"] == mpc["loaded_version"]
            and mlc["alias_version"] == mlc["expected_alias_version"],
        },
        {
            "name": "versions registered (Milepost / MLflow / expected)",
            "detail": f"{mpc['versions']} / {mlc['versions']} / {2 * (n + 1)}",
            "passed": mpc["versions"] == mlc["versions"] == 2 * (n + 1),
        },
        {
            "name": "versions in Staging (Milepost / MLflow / expected)",
            "detail": f"{mpc['staging']} / {mlc['staging']}; expected {2 * (n + 1)} / {n + 1}",
            "passed": mpc["staging"] == 2 * (n + 1) and mlc["staging"] == n + 1,
        },
        {
            "name": "every promote() request completed",
            "detail": ", ".join(mp["promote_statuses"]),
            "passed": mp["promote_statuses"] == ["completed"],
        },
    ]
    notes = [
        "Milepost's log_model saves the model and registers a new version in one call; "
        "MLflow's log_model only saves it (register_model is a second call). So the "
        "log_model rows compare Milepost's save + register with MLflow's save alone, and "
        "'log_model + register' compares the two ways to a registered version (MLflow with "
        "explicit pip_requirements, its faster path).",
        "Both tools save the pipeline with skops (MLflow 3's default serialization for "
        "scikit-learn) and infer a signature from the same 5-row input example. MLflow's "
        "default log_model spends most of its time inferring pip requirements (it loads "
        "the model in a subprocess to see what it imports); explicit pip_requirements skip "
        f"that. Inferred here: {', '.join(ml.get('inferred_requirements', [])) or '-'}.",
        "register: Milepost's time is the registration step inside log_model (the "
        "registry insert with its audit event, add_version, then reading the version back, "
        "get_version); mlflow.register_model creates the model or catches 'already "
        "exists', then creates the version. The raw-insert row compares add_version "
        "alone with MlflowClient.create_model_version.",
        "Stage transitions move a fresh version from None to Staging each time. "
        "ModelService.transition is the audited stage change; promote() is the "
        "user-facing workflow (looks up the policy and the Production version, runs the "
        "gates (none here), records the promotion request in the same transaction). MLflow's "
        "transition_model_version_stage is deprecated since 2.9 but present in 3.x.",
        "load: both return a model ready to predict; mlflow.sklearn.load_model returns the "
        "bare pipeline, Milepost (like pyfunc) wraps it to enforce the signature, and "
        "also verifies the file's SHA-256 and the skops type allow-list.",
        f"Times are medians of {n} repetitions after one warm-up call "
        f"({sizes['default_log_repetitions']} for MLflow's default log_model); the "
        "first-call row is that warm-up, with the lazy imports it pays for.",
    ]
    return {"benchmarks": benchmarks, "checks": checks, "notes": notes}


def _fmt(value: float) -> str:
    return f"{value:,.2f} ms" if value < 10 else f"{value:,.1f} ms"


def report(summary: dict[str, Any], meta: dict[str, Any]) -> None:
    """Print the tables."""
    from rich.console import Console
    from rich.table import Table

    # Wide enough for one line per row when the output goes to a file or a pipe.
    console = Console(width=None if sys.stdout.isatty() else 132)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]", None: "info"}
    table = Table(
        title=f"Model registry: Milepost {meta['versions']['milepost']} vs MLflow "
        f"{meta['versions']['mlflow']} (SQLite, {meta['mode']} repetitions)"
    )
    table.add_column("Benchmark (median)")
    table.add_column("Milepost", justify="right")
    table.add_column("MLflow", justify="right")
    table.add_column("Milepost advantage", justify="right")
    table.add_column("Target")
    table.add_column("Result", justify="center")
    for b in summary["benchmarks"]:
        table.add_row(
            b["label"],
            _fmt(b["milepost"]),
            _fmt(b["mlflow"]),
            f"{b['ratio']:,.1f}x",
            b["target"],
            verdict[b["passed"]],
        )
    console.print(table)
    checks = Table(title="Checks")
    checks.add_column("Check")
    checks.add_column("Detail", justify="right")
    checks.add_column("Result", justify="center")
    for c in summary["checks"]:
        checks.add_row(c["name"], c["detail"], verdict[c["passed"]])
    console.print(checks)
    for note in summary["notes"]:
        console.print(note)
    targeted = [b for b in summary["benchmarks"] if b["passed"] is not None]
    met = sum(b["passed"] for b in targeted)
    colour = "green" if met == len(targeted) else "red"
    console.print(
        f"[bold {colour}]{met}/{len(targeted)} targets met[/]; checks passed: "
        f"{sum(c['passed'] for c in summary['checks'])}/{len(summary['checks'])}. "
        f"Took {meta['elapsed_seconds']:.0f} s "
        f"(Milepost {meta['worker_seconds']['milepost']:.0f} s, "
        f"MLflow {meta['worker_seconds']['mlflow']:.0f} s, including imports and training)."
    )
    console.print(f"Results written to {RESULTS_FILE.relative_to(HERE.parent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--milepost-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.milepost_worker:
        milepost_worker(args.milepost_worker)
        return

    started = time.perf_counter()
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    mlflow_python = ensure_mlflow_venv()
    root = Path(tempfile.mkdtemp(prefix="milepost-bench-"))
    try:
        worker_seconds, raw = {}, {}
        for label in ("mlflow", "milepost"):
            home = root / label
            home.mkdir()
            config = {**sizes, "out": str(home / "results.json")}
            config_path = home / "config.json"
            config_path.write_text(json.dumps(config))
            print(f"{label}: running in {home}", flush=True)
            if label == "mlflow":
                env = clean_env(
                    PATH=f"{MLFLOW_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                    VIRTUAL_ENV=str(MLFLOW_VENV),
                    MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}",
                    MLFLOW_DISABLE_TELEMETRY="true",
                    DO_NOT_TRACK="true",
                    GIT_PYTHON_REFRESH="quiet",
                )
                cmd = [mlflow_python, str(MLFLOW_WORKER), str(config_path)]
            else:
                env = clean_env(MILEPOST_HOME=str(home))
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--milepost-worker",
                    str(config_path),
                ]
            worker_seconds[label] = run_worker(label, cmd, env=env, cwd=home)
            raw[label] = json.loads((home / "results.json").read_text())
    finally:
        if args.keep:
            print(f"Kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    summary = evaluate(raw["milepost"], raw["mlflow"], sizes)
    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "sizes": sizes,
        "versions": {
            "milepost": raw["milepost"]["version"],
            "mlflow": raw["mlflow"]["version"],
            "scikit-learn": raw["mlflow"]["sklearn_version"],
            "skops": raw["mlflow"]["skops_version"],
            "python": platform.python_version(),
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "worker_seconds": worker_seconds,
        "elapsed_seconds": time.perf_counter() - started,
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps({**meta, **summary, "raw": raw}, indent=2) + "\n")
    report(summary, meta)


if __name__ == "__main__":
    main()
