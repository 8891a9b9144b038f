"""The built-in retraining pipeline: a template users call with their own train function,
or copy.

::

    milepost pipelines run milepost.retraining:retrain --param model=churn \\
        --param labels=customers --param target=churned \\
        --param feature_repo=features.py --param train=mypkg.train:fit \\
        --param staging_endpoint=churn-staging

The steps (each a plain typed function in :mod:`milepost.retraining.steps` and
:mod:`milepost.retraining.decide`, each returning a record with its :class:`Decision`):

1. ``validate_data``: the newest version of the ``labels`` dataset (entity keys, the
   event time ``event_timestamp`` and the ``target``) passes ``suite`` (a YAML file or
   ``module:attr``; default: target and time never null, 20 rows or more); a failed
   check fails the run here, with the validation summary.
2. ``build_training_set``: features joined point-in-time from the feature store
   (``features``, or the refs the Production version pins), split by time (the newest
   ``holdout`` share held out) and registered as ``MODEL.train`` and the held-out
   dataset (the policy's metric gate's dataset when it is unpinned, else ``MODEL.test``).
3. ``train_model``: ``train(X, y)`` in a tracked run; held-out metrics logged; the model
   logged with its training data (the drift reference) and an input example, pinning
   the feature refs.
4. ``evaluate_model``: the candidate and Production scored on the same held-out rows;
   who wins, by how much, on the policy's primary metric (or "no baseline").
5. ``promote_to_staging``: the Staging gates; a refusal is a recorded decision, the run
   still succeeds.
6. ``deploy_staging`` (in :mod:`milepost.retraining.deploy`): with a
   ``staging_endpoint``, the version in Staging serves there, pinned: the endpoint is
   created the first time, switched to the new version afterwards (blue/green, then the
   old version retired). No staging endpoint named: a decision saying so.
7. ``deploy_model`` (beside ``deploy_staging``; they may run in parallel): with the
   policy's ``deploy.automatic``, a canary on the endpoint (its Production gates run
   before any traffic). When that endpoint does not exist yet it is created tracking
   Production: at once when the model has a Production version (then the canary), or,
   for the model's first version, after the version passed the Production gates
   ("first Production version: vN serving on E"; an approval gate leaves it pending, a
   failing gate refuses it). Without automatic deployment: a Production request left
   pending approval.

An approver can set the model's policy before its first run (``milepost models policy
MODEL --set policy.yaml`` creates the model); the pipeline itself needs only the member
role: it requests promotions and changes endpoints in-process as the user who started
it, and only an approval gate in the policy stops it for a person.

Nothing here is private machinery: the steps use the same public API as user code
(``milepost.data``, ``FeatureStore``, ``start_run``, ``evaluate``, ``Client.promote``,
``update_endpoint``), so copying this package is a fair start for a pipeline of one's own.
"""

from __future__ import annotations

from milepost.pipelines import pipeline
from milepost.retraining.decide import deploy_model, evaluate_model, promote_to_staging
from milepost.retraining.deploy import deploy_staging
from milepost.retraining.records import (
    Candidate,
    Comparison,
    DataCheck,
    Decision,
    Deployment,
    Staging,
    TrainingSet,
    decisions,
)
from milepost.retraining.steps import (
    build_training_set,
    default_suite,
    default_train,
    train_model,
    validate_data,
)

__all__ = [
    "Candidate",
    "Comparison",
    "DataCheck",
    "Decision",
    "Deployment",
    "Staging",
    "TrainingSet",
    "build_training_set",
    "decisions",
    "default_suite",
    "default_train",
    "deploy_model",
    "deploy_staging",
    "evaluate_model",
    "promote_to_staging",
    "retrain",
    "run_steps",
    "train_model",
    "validate_data",
]


@pipeline(name="retrain")
def retrain(
    model: str,
    labels: str,
    target: str,
    features: str = "",
    feature_repo: str = "",
    train: str = "milepost.retraining:default_train",
    holdout: float = 0.25,
    suite: str = "",
    endpoint: str = "",
    staging_endpoint: str = "",
) -> None:
    """Retrain ``model`` on the newest ``labels`` and deploy it if the policy allows.

    Args:
        model: the registered model.
        labels: a dataset name; its newest version holds the entity keys, the event time
            (``event_timestamp``) and ``target``.
        target: the label column.
        features: comma-separated ``view:feature`` refs; empty = those Production pins.
        feature_repo: the feature definitions (a ``.py`` file or a module); empty = the
            ``feature_repo`` setting.
        train: ``module:function`` taking ``(X, y)`` and returning a fitted estimator.
        holdout: the newest share of the rows held out for the comparison (0 to 1).
        suite: an expectation suite (YAML file or ``module:attr``); empty = the defaults
            (target and event time never null, 20 rows or more).
        endpoint: where a canary starts when the policy's ``deploy.automatic`` allows;
            empty = the policy's ``deploy.endpoint``. Created (tracking Production) when
            it does not exist.
        staging_endpoint: an endpoint pinned to the version in Staging (created the
            first time, switched to each new Staging version); empty = none.
    """
    checked = validate_data(labels, target, suite)
    training = build_training_set(checked, model, target, features, feature_repo, holdout, suite)
    candidate = train_model(training, model, train)
    comparison = evaluate_model(candidate)
    staging = promote_to_staging(comparison)
    deploy_staging(staging, staging_endpoint)
    deploy_model(staging, endpoint)


def run_steps(
    model: str,
    labels: str,
    target: str,
    features: str = "",
    feature_repo: str = "",
    train: str = "milepost.retraining:default_train",
    holdout: float = 0.25,
    suite: str = "",
    endpoint: str = "",
    staging_endpoint: str = "",
) -> list[Decision]:
    """The pipeline's steps in order, in this process, without the pipeline engine (no
    caching, no step records): for a notebook or a test. Returns every decision."""
    checked = validate_data(labels, target, suite)
    training = build_training_set(checked, model, target, features, feature_repo, holdout, suite)
    candidate = train_model(training, model, train)
    comparison = evaluate_model(candidate)
    staging = promote_to_staging(comparison)
    staged = deploy_staging(staging, staging_endpoint)
    deployment = deploy_model(staging, endpoint)
    return decisions(checked, training, candidate, comparison, staging, staged, deployment)
