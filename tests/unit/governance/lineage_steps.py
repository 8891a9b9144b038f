"""A two-step pipeline for the lineage tests: ``prepare`` reads a raw dataset version and
registers a training set from it, ``train`` (a tracked step) trains and registers a model
on that set. Importable by ref: ``tests.unit.governance.lineage_steps:training``."""

from __future__ import annotations

from dataclasses import dataclass

from milepost.pipelines import pipeline, step

MODEL = "pipe_model"
FEATURES = ["age", "tenure_months", "monthly_spend"]


@dataclass(frozen=True)
class Prepared:
    """The raw version read and the training set registered from it."""

    raw: str
    train: str

    def lineage_links(self) -> list[tuple[str, str, str]]:
        return [("dataset_version", self.raw, "input"), ("dataset_version", self.train, "output")]


@dataclass(frozen=True)
class Trained:
    """The model version registered."""

    model: str
    version: int

    def lineage_links(self) -> list[tuple[str, str]]:
        return [("model_version", f"{self.model}/{self.version}")]


@step
def prepare(raw: str) -> Prepared:
    import milepost

    frame = milepost.data.get(raw).to_pandas()
    version = milepost.data.register("pipe.train", frame.head(300))
    return Prepared(raw, version.ref)


@step(track=True)
def train(prepared: Prepared) -> Trained:
    from sklearn.linear_model import LogisticRegression

    import milepost

    milepost.log_input(prepared.train, role="train")
    frame = milepost.data.get(prepared.train).to_pandas()
    model = LogisticRegression(max_iter=200).fit(frame[FEATURES], frame["churned"])
    mv = milepost.log_model(model, MODEL, input_example=frame[FEATURES].head(3))
    return Trained(mv.name, mv.version)


@pipeline
def training(raw: str = "lineage.raw@1") -> None:
    train(prepare(raw))
