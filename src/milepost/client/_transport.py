"""One HTTP connection pool to the server; errors come back as the same exceptions.

The server answers every error as ``{code, message, hint, details}``;
:meth:`Transport.request` raises the :class:`~milepost.errors.MilepostError` subclass
with that ``code`` (``not_found`` -> NotFound, ...), so code written against embedded
mode catches the same exceptions remotely.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any

import httpx

from milepost.errors import BackendUnavailable, InvalidInput, MilepostError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["Transport", "error_from_wire"]

_BY_CODE: dict[str, type[MilepostError]] = {}


def _index(cls: type[MilepostError]) -> None:
    _BY_CODE.setdefault(cls.code, cls)
    for sub in cls.__subclasses__():
        _index(sub)


_index(MilepostError)


def error_from_wire(status: int, body: Any) -> MilepostError:
    """The exception an error answer stands for."""
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        cls = _BY_CODE.get(str(body.get("code")), MilepostError)
        return cls(body["message"], hint=body.get("hint"), details=body.get("details"))
    return MilepostError(f"The server answered HTTP {status} with no Milepost error body.")


class Transport:
    """Requests to ``{url}/api/v1`` with the token, over one keep-alive pool.

    Args:
        url: the server's base URL (``http://host:8080``).
        token: the API token, or None.
        timeout: seconds per request.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": "milepost-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout)
        _LIVE.add(self)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer (None for 204); an error answer raises its exception."""
        response = self.send(
            method, path, json=json, params=params, content=content, headers=headers
        )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """The raw response (streamed when asked; close it); an error raises."""
        clean = None if params is None else {k: v for k, v in params.items() if v is not None}
        try:
            request = self._client.build_request(
                method, path, json=json, params=clean, content=content, headers=headers
            )
        except (TypeError, ValueError) as exc:  # JSON cannot carry the value
            raise InvalidInput(
                f"Cannot send this request to the server: {exc}.",
                hint="Pass plain data: strings, numbers, lists and dicts with string keys.",
            ) from None
        try:
            response = self._client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from exc
        if 300 <= response.status_code < 400:  # the API never redirects a good request
            response.close()
            raise MilepostError(
                f"The server answered {request.method} {request.url.path} with HTTP "
                f"{response.status_code} (a redirect), not an answer.",
                hint="Check MILEPOST_URL: it is the server's base URL, e.g. "
                "http://127.0.0.1:8080, without /api/v1.",
            )
        if response.status_code >= 400:
            if stream:
                response.read()
            try:
                body = response.json()
            except ValueError:
                body = None
            raise error_from_wire(response.status_code, body)
        return response

    def iter_bytes(self, response: httpx.Response, chunk_size: int) -> Iterator[bytes]:
        """A streamed response's body in chunks; a connection lost midway raises
        BackendUnavailable."""
        try:
            yield from response.iter_bytes(chunk_size)
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from exc

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _reset_in_child(self) -> None:
        # The parent's pooled connections are its own; the child opens new ones.
        self._client = httpx.Client(
            base_url=self._client.base_url,
            headers=self._client.headers,
            timeout=self._client.timeout,
        )


def _unreachable(url: str, exc: httpx.HTTPError) -> BackendUnavailable:
    return BackendUnavailable(
        f"Cannot reach the Milepost server at {url}: {type(exc).__name__}: {exc}.",
        hint="Check MILEPOST_URL and that `milepost server` is running there.",
    )


_LIVE: weakref.WeakSet[Transport] = weakref.WeakSet()


def _reset_all_in_child() -> None:
    for transport in list(_LIVE):
        transport._reset_in_child()


os.register_at_fork(after_in_child=_reset_all_in_child)
