"""Rendering and the pieces every page shares: who is asking, errors as pages, forms.

Pages are plain ``def`` handlers (FastAPI runs them in a thread as the caller, like the
API's routes) on routers built with :func:`page_router`, whose route class turns a
:class:`~milepost.errors.MilepostError` into an error page with the error's status and a
missing or expired session into a redirect to ``/login``. A POST handler takes
``form: Form = Depends(posted)``: the parsed ``application/x-www-form-urlencoded`` body,
refused (403) unless it carries the session's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import jinja2
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from markupsafe import Markup

from milepost.errors import InvalidInput, MilepostError, PayloadTooLarge, PermissionDenied
from milepost.errors import http_status as status_of
from milepost.governance.tokens import Principal
from milepost.server.api.auth import SESSION_COOKIE, principal_of

__all__ = [
    "CSRF_FIELD",
    "Form",
    "LoginRequired",
    "caller",
    "csrf_token",
    "page_router",
    "posted",
    "redirect",
    "render",
]

CSRF_FIELD = "csrf"
#: The largest form body a page accepts (forms carry a reason at most).
MAX_FORM_BYTES = 64 * 1024
#: Pages load only this server's own scripts and styles (inline SVG styles allowed).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """No valid session: the page redirects to ``/login`` (with why, when known)."""

    def __init__(self, why: str | None = None) -> None:
        super().__init__(why or "Log in to continue.")
        self.why = why


def caller(request: Request) -> Principal:
    """The logged-in user (a dependency of every page)."""
    error = getattr(request.state, "auth_error", None)
    if error is not None:
        raise LoginRequired(getattr(error, "message", str(error)))
    principal = principal_of(request)
    if principal is None:
        raise LoginRequired()
    return principal


def csrf_token(request: Request, principal: Principal) -> str:
    """The CSRF token of ``principal``'s session: an HMAC of its token id with this
    process's secret (the same for every page of the session, useless for any other)."""
    bound = principal.token_id or f"user:{principal.user}"
    secret: bytes = request.app.state.ui_secret
    return hmac.new(secret, bound.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Form:
    """A posted form: who posted it and its fields (first value of each)."""

    principal: Principal
    fields: Mapping[str, str]

    def get(self, key: str) -> str | None:
        value = self.fields.get(key, "").strip()
        return value or None

    def require(self, role: str, doing: str) -> None:
        """Refuse (PermissionDenied) a poster without ``role``; ``doing`` names the act,
        e.g. ``"roll back endpoints"``."""
        if not self.principal.allows(role):
            raise PermissionDenied(
                f"{self.principal.user!r} (role {self.principal.role}) may not {doing}: "
                f"it needs the {role} role.",
                hint=f"Ask an admin for a token with the {role} role.",
            )


async def form_fields(request: Request) -> dict[str, str]:
    """The url-encoded body of a POST (refused past :data:`MAX_FORM_BYTES`)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise PayloadTooLarge(f"A form of {int(declared):,} bytes is too large for a page.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge("This form is too large for a page.")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind != "application/x-www-form-urlencoded":
        raise InvalidInput(
            f"A page's form is sent url-encoded, not as {kind or 'no content type'}.",
            hint="Use the page's own form, or the API under /api/v1.",
        )
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("This form could not be read.") from exc
    return {key: values[0] for key, values in parsed.items()}


async def posted(request: Request) -> Form:
    """A POST's form, from a logged-in user, with the session's CSRF token (else 403)."""
    principal = caller(request)
    fields = await form_fields(request)
    sent = fields.get(CSRF_FIELD, "")
    if not hmac.compare_digest(sent.encode(), csrf_token(request, principal).encode()):
        raise PermissionDenied(
            "This form has no valid CSRF token (it did not come from this session's page).",
            hint="Reload the page and submit the form again.",
        )
    return Form(principal, fields)


class _PageRoute(APIRoute):
    """A route whose errors are pages and whose missing session is a login redirect."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired as exc:
                response = _to_login(request, exc.why)
            except MilepostError as exc:
                response = _error_page(request, status_of(exc), exc.message, exc.hint)
            except RequestValidationError as exc:
                where = ", ".join(
                    ".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()
                )
                response = _error_page(request, 400, f"Invalid value for {where}.", None)
            for key, value in SECURITY_HEADERS.items():
                response.headers.setdefault(key, value)
            return response

        return page


def page_router() -> APIRouter:
    """A router for UI pages (not in the API's OpenAPI schema)."""
    return APIRouter(route_class=_PageRoute, include_in_schema=False)


def _to_login(request: Request, why: str | None) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/"
    # a code, not the message: the login page never shows text taken from a URL
    location = "/login?" + urlencode({"next": target, **({"why": "ended"} if why else {})})
    response = RedirectResponse(location, status_code=303)
    if why is not None:  # an expired or revoked token: forget it
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _error_page(request: Request, status: int, message: str, hint: str | None) -> Response:
    principal = principal_of(request)
    return render(
        request,
        "error.html",
        principal,
        status=status,
        title=f"Error {status}",
        message=message,
        hint=hint,
    )


def redirect(path: str) -> RedirectResponse:
    """After a successful POST: see the result (303, so a reload does not post again)."""
    return RedirectResponse(path, status_code=303)


# -- rendering ------------------------------------------------------------------------


def fmt_time(ms: int | float | None) -> str:
    """Epoch milliseconds as ``2026-01-31 14:05:09`` (UTC)."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(ms: int | float | None) -> str:
    """Milliseconds as ``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def fmt_num(value: Any) -> str:
    """A number in 4 significant digits (integers whole, with separators)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    return str(value)


def fmt_bytes(n: int | None) -> str:
    """A size in B, KiB, MiB, GiB."""
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def query(base: str, params: Mapping[str, Any], **changes: Any) -> str:
    """``base`` with ``params`` updated by ``changes`` as its query (None drops a key)."""
    merged = {**params, **changes}
    kept = [(k, v) for k, v in merged.items() if v is not None and v != ""]
    return base + ("?" + urlencode(kept, doseq=True) if kept else "")


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("milepost.server.ui", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    time=fmt_time,
    duration=fmt_duration,
    num=fmt_num,
    bytes=fmt_bytes,
    pct=fmt_pct,
    path=lambda s: quote(str(s), safe=""),
)
_env.globals.update(query=query, svg=Markup)


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered with ``context``, the caller, the CSRF token and the nav."""
    auth_required = request.app.state.auth.required
    html = _env.get_template(template).render(
        request=request,
        principal=principal,
        csrf=csrf_token(request, principal) if principal is not None else "",
        can=(lambda role: principal is not None and principal.allows(role)),
        auth_required=auth_required,
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=status)
