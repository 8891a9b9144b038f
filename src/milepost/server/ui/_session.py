"""Log in with an API token, log out.

The login form is a POST (the token never appears in a URL or an access log); its CSRF
token is a double-submit cookie, since there is no session yet. A valid token becomes
the ``milepost_session`` cookie: HttpOnly (no script reads it), SameSite=Strict (no other
site's page sends it), Secure when the page came over https, Path=/. The API ignores
that cookie (its callers send the token themselves), so only these pages, whose forms
carry the session's CSRF token, act on it.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request, Response

from milepost.errors import MilepostError
from milepost.server.api.auth import SESSION_COOKIE, principal_of
from milepost.server.ui._render import (
    Form,
    form_fields,
    page_router,
    posted,
    redirect,
    render,
)

__all__ = ["LOGIN_COOKIE", "router", "safe_next"]

router = page_router()

#: The login form's double-submit CSRF cookie.
LOGIN_COOKIE = "milepost_login"
#: Why the login page is shown, by the code in its URL (never text from the URL itself).
_REASONS = {"ended": "Your session ended: its token expired or was revoked. Log in again."}


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server, never another site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _login_page(request: Request, *, target: str, why: str | None, status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        None,
        status=status,
        title="Log in",
        login_csrf=nonce,
        target=target,
        why=why,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None, why: str | None = None) -> Response:
    """The login form (or straight on, when this server needs no login)."""
    target = safe_next(next)
    if not request.app.state.auth.required:
        return redirect(target)
    principal = principal_of(request)
    if principal is not None and why is None:
        return redirect(target)
    return _login_page(request, target=target, why=_REASONS.get(why or ""))


@router.post("/login")
def login(request: Request, fields: Annotated[dict[str, str], Depends(form_fields)]) -> Response:
    """Exchange an API token for the session cookie."""
    target = safe_next(fields.get("next"))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    sent = fields.get("csrf", "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        return _login_page(
            request,
            target=target,
            why="The login form expired (or came from another page): please try again.",
            status=403,
        )
    token = fields.get("token", "").strip()
    if not token:
        return _login_page(request, target=target, why="Paste an API token.", status=400)
    try:
        request.app.state.rt.tokens.authenticate(token)
    except MilepostError as exc:
        return _login_page(request, target=target, why=exc.message, status=401)
    response = redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(form: Annotated[Form, Depends(posted)]) -> Response:
    """Forget the session cookie."""
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
