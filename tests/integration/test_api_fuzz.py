"""Schemathesis against the live server's published schema, as an admin: no 500s.

Every operation in ``/api/v1/openapi.json`` gets a few generated requests, valid and
invalid (``max_examples`` per operation, kept small so the whole run stays around a
minute on a 2-core machine); each answer must not be a server error, must use a status
the schema documents and, where it is JSON, have the documented content type.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import milepost
from tests._server import platform_server
from tests.conftest import optional_import

schemathesis = optional_import("schemathesis", extra="dev")

pytestmark = pytest.mark.slow

EXAMPLES = 10


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("fuzz")
    rt = milepost.Runtime.open(home=str(home / ".milepost"), user="alice")
    _, secret = rt.tokens.create("fuzz", "admin", expires_in_days=None)
    with platform_server(rt) as url:
        yield {"url": url, "token": secret}
    rt.close()


def test_no_request_is_a_server_error(live: dict[str, Any]) -> None:
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        status_code_conformance,
    )

    auth = {"Authorization": f"Bearer {live['token']}"}
    schema = schemathesis.openapi.from_url(f"{live['url']}/api/v1/openapi.json", headers=auth)
    # Not negative_data_rejection: it counts a repeated query parameter (?role=a&role=b,
    # which FastAPI, like most servers, reads as the last value) as accepted invalid data.
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
    ]
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def call(case: Any) -> None:
                case.call_and_validate(base_url=live["url"], headers=auth, checks=checks)

            try:
                call()
            except Unsatisfiable:  # nothing invalid to send (no parameters, no body)
                continue
            except Exception as exc:  # every failure is collected and shown
                failures[f"{operation.method.upper()} {operation.path} ({mode})"] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
