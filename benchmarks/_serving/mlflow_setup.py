"""Log the benchmark's pipeline with MLflow; runs in ``benchmarks/.venv-mlflow``.

Usage: ``python mlflow_setup.py WORKDIR``. ``MLFLOW_TRACKING_URI`` (a SQLite file in
WORKDIR) comes from the environment and WORKDIR is the working directory, so the
artifacts go to ``WORKDIR/mlruns``; ``mlflow models serve`` is later started with the same
environment and directory. Reads ``pipeline.pkl`` and ``rows.json`` written by
``milepost_setup.py``, logs the pipeline with ``mlflow.sklearn.log_model`` (explicit pip
requirements, so no requirement inference), checks that the pyfunc model loaded back
predicts as the pipeline, and writes ``mlflow.json`` (the model URI and versions).
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn


def main() -> None:
    work = Path(sys.argv[1])
    pipe = pickle.loads((work / "pipeline.pkl").read_bytes())  # noqa: S301 - our own file
    data = json.loads((work / "rows.json").read_text())
    frame = pd.DataFrame(data["rows"])[data["inputs"]]
    mlflow.set_experiment("serving-bench")
    requirements = [
        f"mlflow=={mlflow.__version__}",
        f"scikit-learn=={sklearn.__version__}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
    ]
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipe, name="model", input_example=frame.head(5), pip_requirements=requirements
        )
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    same = np.asarray(loaded.predict(frame)).tolist() == data["predictions"]
    (work / "mlflow.json").write_text(
        json.dumps(
            {
                "model_uri": info.model_uri,
                "mlflow": mlflow.__version__,
                "sklearn": sklearn.__version__,
                "pyfunc_predicts_as_pipeline": same,
            }
        )
    )
    print(f"logged {info.model_uri}; pyfunc predicts as the pipeline: {same}", flush=True)


if __name__ == "__main__":
    main()
