"""Setup for the shared registry, promotion and card tests: models registered through
the embedded runtime (logging a model needs the stores), and clients of other users."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

import milepost
from milepost._actor import acting_as
from milepost.client import RemoteRuntime
from milepost.config import load_settings

FRAME = pd.DataFrame(
    {
        "age": [23, 35, 47, 51, 62, 29, 44, 38],
        "spend": [10.0, 52.5, 13.1, 80.2, 33.3, 21.0, 64.0, 5.5],
        "churned": [0, 1, 0, 1, 1, 0, 1, 0],
    }
)


def register_model(rt: Any, name: str, versions: int = 2) -> None:
    """Log ``versions`` small scikit-learn models as versions 1.. of ``name``."""
    from sklearn.linear_model import LogisticRegression

    x, y = FRAME[["age", "spend"]], FRAME["churned"]
    for c in range(versions):
        run = rt.tracking.start_run(experiment=f"{name}-exp")
        rt.tracking.log_metrics(run.run_id, {"roc_auc": 0.7 + c / 100})
        model = LogisticRegression(C=1.0 + c).fit(x, y)
        rt.models.log_model(run.run_id, model, name=name, input_example=x.head(3))
        rt.tracking.end_run(run.run_id)


def remote_runtime(platform: dict[str, Any], token: str) -> RemoteRuntime:
    """A remote runtime to the shared server with ``token``."""
    resolved = load_settings(
        env={"MILEPOST_URL": platform["url"], "MILEPOST_TOKEN": token},
        cwd=Path(platform["home"]),
    )
    return RemoteRuntime(resolved)


def token_of(platform: dict[str, Any], user: str, role: str) -> str:
    """A token of ``user`` with ``role`` (one per user and role for the module)."""
    tokens = platform.setdefault("tokens", {})
    if (user, role) not in tokens:
        _, secret = platform["rt"].tokens.create(f"{user}-{role}", role, user=user)
        tokens[user, role] = secret
    secret: str = tokens[user, role]
    return secret


@contextlib.contextmanager
def client_of(
    platform: dict[str, Any], mode: str, user: str, role: str
) -> Iterator[milepost.Client]:
    """A client acting as ``user`` with ``role``: embedded, the runtime acting as them;
    remote, a runtime with a token of theirs."""
    secret = token_of(platform, user, role)  # also grants approver/admin roles to the user
    if mode == "embedded":
        with acting_as(user):
            yield milepost.Client(platform["rt"])
        return
    remote = remote_runtime(platform, secret)
    try:
        yield milepost.Client(remote)
    finally:
        remote.close()
