"""No junk in a path, query or body of the registry, promotion, data and feature routes
gets a 500: every route of those tags in the OpenAPI schema is called with junk values."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

TAGS = {"registry", "promotions", "data", "features"}
JUNK = ["ü", "9" * 30, "-1", "0", "..", "a b", "\x00", "models:/x/1", "x@0", "\u202e", "nan"]
BODIES: list[Any] = [{}, [], "x", {"version": "x"}, {"policy": {"production": [{"kind": 1}]}}]


def _routes(url: str) -> list[tuple[str, str]]:
    schema = httpx.get(f"{url}/api/v1/openapi.json").json()
    return [
        (method.upper(), path)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if TAGS & set(op.get("tags", []))
    ]


def test_junk_never_gets_a_500(platform: dict[str, Any]) -> None:
    routes = _routes(platform["url"])
    assert len(routes) > 40
    headers = {"Authorization": f"Bearer {platform['token']}"}
    with httpx.Client(base_url=platform["url"], headers=headers, timeout=30) as http:
        for method, path in routes:
            for i, junk in enumerate(JUNK):
                segment = quote(junk, safe="").replace("\\", "\\\\")
                concrete = re.sub(r"\{[^}]+\}", segment, path)
                body = BODIES[i % len(BODIES)]
                params = {"at": junk, "limit": junk, "version": junk, "a": junk, "b": junk}
                answer = http.request(
                    method,
                    f"/api/v1{concrete}",
                    params=params,
                    json=body if method in ("POST", "PUT") else None,
                )
                assert answer.status_code < 500, (method, concrete, answer.text)
                assert (
                    answer.headers["content-type"].startswith(
                        ("application/json", "text/", "application/vnd.apache.parquet")
                    )
                    or answer.status_code == 204
                ), (method, concrete)


@pytest.mark.parametrize("junk", JUNK)
def test_model_names_in_paths(platform: dict[str, Any], junk: str) -> None:
    headers = {"Authorization": f"Bearer {platform['token']}"}
    answer = httpx.get(f"{platform['url']}/api/v1/models/{quote(junk, safe='')}", headers=headers)
    assert answer.status_code in (400, 404), answer.text
