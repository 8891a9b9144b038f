"""Remote proxy of the promotion workflow: policies, requests, approvals.

:class:`RemotePromotion` has the methods ``milepost.Client`` and ``milepost models ...``
call on ``rt.promotion``. The server runs the gates and records every result as the
caller (the token's user), so the four-eyes rule holds remotely as it does embedded: a
requester approving their own request gets the same PermissionDenied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from milepost import _validate as check
from milepost._records import record_from_dict
from milepost.models.uri import check_model_name
from milepost.promotion.models import PromotionRequest
from milepost.promotion.policy import PromotionPolicy

if TYPE_CHECKING:
    from pathlib import Path

    from milepost.client._runtime import RemoteRuntime
    from milepost.client._transport import Transport

__all__ = ["RemotePromotion"]


def _name(name: object) -> str:
    return quote(check_model_name(name), safe="")


def _request_path(request_id: object) -> str:
    if isinstance(request_id, str):
        request_id = request_id.strip().lower()
    text = check.name(request_id, "Promotion request id", max_length=32)
    return f"/promotions/{quote(text, safe='')}"


def _request(answer: Any) -> PromotionRequest:
    return record_from_dict(PromotionRequest, answer)


class RemotePromotion:
    """``rt.promotion`` over HTTP."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self.runtime = runtime

    @property
    def http(self) -> Transport:
        return self.runtime.transport

    # -- policy -----------------------------------------------------------------------

    def set_policy(
        self, name: str, policy: PromotionPolicy | dict[str, Any] | str | Path | None
    ) -> PromotionPolicy:
        """Set (or with None, clear) a model's policy (approver; audited).

        A YAML file is read here, on the caller's machine; the policy is checked here
        as embedded mode checks it, then stored by the server, which checks it again.
        """
        path = f"/models/{_name(name)}/policy"
        if policy is None:
            self.http.request("DELETE", path)
            return PromotionPolicy()
        if isinstance(policy, PromotionPolicy):
            parsed = PromotionPolicy.from_dict(policy.to_dict())
        elif isinstance(policy, dict):
            parsed = PromotionPolicy.from_dict(policy)
        else:
            parsed = PromotionPolicy.from_yaml(policy)
        answer = self.http.request("PUT", path, json={"policy": parsed.to_dict()})
        return PromotionPolicy.from_dict(answer)

    def get_policy(self, name: str) -> PromotionPolicy:
        """A model's policy (empty when none is set)."""
        return PromotionPolicy.from_dict(self.http.request("GET", f"/models/{_name(name)}/policy"))

    # -- requests ---------------------------------------------------------------------

    def promote(
        self, name: str, version: int, to: str, *, reason: str | None = None
    ) -> PromotionRequest:
        """Run the gates for ``to`` on the server and transition, wait, or refuse.

        Raises:
            GateFailed: an automated gate failed (``details`` holds every gate's result).
            Conflict: the transition is illegal, or Production changed meanwhile.
            PermissionDenied: a request to Production that no approval gate guards needs
                the approver role.
        """
        check_model_name(name)
        check.integer(version, "Model version", minimum=1)
        check.name(to, "Target stage", max_length=32)
        body = {
            "model": name,
            "version": version,
            "to": to,
            "reason": check.optional_text(reason, "reason"),
        }
        return _request(self.http.request("POST", "/promotions", json=body))

    def approve(self, request_id: str, *, reason: str | None = None) -> PromotionRequest:
        """Approve a waiting request (approver; never your own unless the policy allows)."""
        reason = check.optional_text(reason, "reason")
        path = _request_path(request_id) + "/approve"
        return _request(self.http.request("POST", path, json={"reason": reason}))

    def reject(self, request_id: str, *, reason: str | None = None) -> PromotionRequest:
        """Reject a waiting request (approver)."""
        reason = check.optional_text(reason, "reason")
        path = _request_path(request_id) + "/reject"
        return _request(self.http.request("POST", path, json={"reason": reason}))

    def get_request(self, request_id: str) -> PromotionRequest:
        """A request with its gate results."""
        return _request(self.http.request("GET", _request_path(request_id)))

    def list_requests(
        self,
        *,
        status: str | tuple[str, ...] | None = None,
        model: str | None = None,
        version: int | None = None,
    ) -> list[PromotionRequest]:
        """Requests, newest first."""
        statuses: list[str] | None = None
        if isinstance(status, str):
            statuses = [check.name(status, "Request status", max_length=32)]
        elif status is not None:
            statuses = list(check.string_list(status, "Request statuses"))
        if model is not None:
            check_model_name(model)
        if version is not None:
            check.integer(version, "version", minimum=1)
        answer = self.http.request(
            "GET", "/promotions", params={"status": statuses, "model": model, "version": version}
        )
        return [_request(d) for d in answer["items"]]
