"""Milepost's errors: one tree, each class with a stable ``code``.

::

    MilepostError                 internal
    ├── NotFound                  not_found
    ├── AlreadyExists             already_exists
    ├── InvalidInput              invalid_input
    │   ├── InvalidFilter         invalid_filter
    │   └── PayloadTooLarge       payload_too_large
    ├── Conflict                  conflict
    ├── PermissionDenied          permission_denied
    │   └── Unauthenticated       unauthenticated
    ├── BackendUnavailable        backend_unavailable
    ├── GateFailed                gate_failed
    │   └── ValidationFailed      validation_failed
    ├── ConfigError               config_error
    ├── IntegrityViolation        integrity_violation
    └── ModelFailed               model_error

Every message says what was wrong, with the offending value, and what to do next.
Messages can reach HTTP clients, so they never carry secrets (passwords in URIs are
masked by :func:`mask_uri`).
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "HTTP_STATUS",
    "AlreadyExists",
    "BackendUnavailable",
    "ConfigError",
    "Conflict",
    "GateFailed",
    "IntegrityViolation",
    "InvalidFilter",
    "InvalidInput",
    "MilepostError",
    "ModelFailed",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "Unauthenticated",
    "ValidationFailed",
    "did_you_mean",
    "http_status",
    "mask_uri",
]


class MilepostError(Exception):
    """Root of every error Milepost raises on purpose."""

    code: ClassVar[str] = "internal"
    headline: ClassVar[str] = "Milepost error"

    def __init__(self, message: str, *, hint: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The wire form: ``{code, message, hint, details}``."""
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "details": self.details,
        }


class NotFound(MilepostError):
    """The named object does not exist."""

    code = "not_found"
    headline = "Not found"


class AlreadyExists(MilepostError):
    """An object with that identity exists already."""

    code = "already_exists"
    headline = "Already exists"


class InvalidInput(MilepostError):
    """The caller passed a value Milepost cannot accept."""

    code = "invalid_input"
    headline = "Invalid input"


class InvalidFilter(InvalidInput):
    """A search filter or ordering could not be parsed; ``details`` has the position."""

    code = "invalid_filter"
    headline = "Invalid filter"


class PayloadTooLarge(InvalidInput):
    """A request carries more than a documented limit allows (bytes, rows, labels)."""

    code = "payload_too_large"
    headline = "Too large"


class Conflict(MilepostError):
    """The request clashes with the current state (for example an immutable value)."""

    code = "conflict"
    headline = "Conflict"


class PermissionDenied(MilepostError):
    """The actor may not do this."""

    code = "permission_denied"
    headline = "Permission denied"


class Unauthenticated(PermissionDenied):
    """A credential is required and was missing or wrong."""

    code = "unauthenticated"
    headline = "Not authenticated"


class BackendUnavailable(MilepostError):
    """A database, object store or server could not be reached or failed."""

    code = "backend_unavailable"
    headline = "Backend unavailable"


class GateFailed(MilepostError):
    """A promotion gate refused the change."""

    code = "gate_failed"
    headline = "Gate failed"


class ValidationFailed(GateFailed):
    """Data failed its expectation suite; ``result`` holds every check's outcome."""

    code = "validation_failed"
    headline = "Validation failed"

    def __init__(
        self, message: str, *, hint: str | None = None, details: Any = None, result: Any = None
    ) -> None:
        super().__init__(message, hint=hint, details=details)
        self.result = result


class ConfigError(MilepostError):
    """The settings are wrong or incomplete."""

    code = "config_error"
    headline = "Configuration error"


class IntegrityViolation(MilepostError):
    """Stored data failed an integrity check (audit chain, content hash)."""

    code = "integrity_violation"
    headline = "Integrity violation"


class ModelFailed(MilepostError):
    """A model could not predict on input that passed its signature: the model's fault,
    not the caller's (a serving variant's error rate counts it)."""

    code = "model_error"
    headline = "Model failed"


# The one table from error code to HTTP status, for every server Milepost runs.
HTTP_STATUS: dict[str, int] = {
    "not_found": 404,
    "already_exists": 409,
    "invalid_input": 400,
    "invalid_filter": 400,
    "payload_too_large": 413,
    "conflict": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "backend_unavailable": 503,
    "gate_failed": 422,
    "validation_failed": 422,
    "config_error": 500,
    "integrity_violation": 500,
    "model_error": 500,
    "internal": 500,
}


def http_status(error: MilepostError) -> int:
    """The HTTP status an error is answered with."""
    return HTTP_STATUS.get(error.code, 500)


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """A ``Did you mean ...?`` suffix, or an empty string when nothing is close."""
    close = difflib.get_close_matches(value, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


_PASSWORD_IN_URI = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)@")


def mask_uri(uri: str) -> str:
    """Hide the password in a URI such as ``postgresql://user:secret@host/db``."""
    return _PASSWORD_IN_URI.sub(lambda m: f"{m.group('head')}***@", uri)
