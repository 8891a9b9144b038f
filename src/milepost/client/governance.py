"""Lineage, the audit trail, roles and tokens over HTTP.

:class:`RemoteLineage`, :class:`RemoteAudit`, :class:`RemoteRoles` and
:class:`RemoteTokens` stand in for ``rt.lineage``, ``rt.audit``, ``rt.roles`` and
``rt.tokens``: the same methods, records and exceptions, made by calls to ``/api/v1``.
The server acts as the token's user, so what a remote call changes is audited as them.
"""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

from milepost import _validate as check
from milepost._records import record_from_dict
from milepost.client._ops_wire import body, seg
from milepost.errors import InvalidInput, MilepostError

if TYPE_CHECKING:
    import builtins
    from pathlib import Path

    from milepost.client._runtime import RemoteRuntime
    from milepost.governance.audit import ExportSummary, VerifyReport
    from milepost.governance.lineage import Direction, LineageGraph, LineageNode
    from milepost.governance.roles import RoleGrant
    from milepost.governance.tokens import ApiToken, Principal
    from milepost.stores.audit import AuditEvent

__all__ = ["RemoteAudit", "RemoteLineage", "RemoteRoles", "RemoteTokens"]

#: The header ``GET /audit/export`` carries its summary in.
SUMMARY_HEADER = "X-Milepost-Export-Summary"


class RemoteLineage:
    """``rt.lineage`` in remote mode."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self._http = runtime.transport

    def graph(
        self,
        ref: str,
        *,
        direction: Direction = "both",
        depth: int | None = None,
        max_nodes: int | None = None,
    ) -> LineageGraph:
        """The lineage graph around ``ref`` (see :meth:`LineageService.graph`)."""
        from milepost.governance.lineage import LineageGraph

        check.string(ref, "A lineage ref")
        check.choice(direction, "direction", ("upstream", "downstream", "both"))
        if depth is not None:
            check.integer(depth, "depth", minimum=0)
        if max_nodes is not None:
            check.integer(max_nodes, "max_nodes", minimum=1)
        answer = self._http.request(
            "GET",
            "/lineage",
            params={"ref": ref, "direction": direction, "depth": depth, "max_nodes": max_nodes},
        )
        return record_from_dict(LineageGraph, answer)

    def models_trained_on(self, dataset: str, *, stage: str | None = None) -> list[LineageNode]:
        """Model versions trained on ``dataset`` (``NAME@VERSION``)."""
        from milepost.governance.lineage import LineageNode

        check.string(dataset, "A dataset version")
        if stage is not None:
            check.string(stage, "stage")
        answer = self._http.request(
            "GET", "/lineage/models-trained-on", params={"dataset": dataset, "stage": stage}
        )
        return [record_from_dict(LineageNode, n) for n in answer["items"]]


def _filters(**given: Any) -> dict[str, Any]:
    """Audit filters as query parameters (type-checked here: they go in a URL)."""
    out: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:
            continue
        if key.endswith("_ms"):
            out[key] = check.integer(value, key)
        else:
            out[key] = check.string(value, key)
    return out


def _report(data: dict[str, Any]) -> VerifyReport:
    from milepost.governance.audit import AuditProblem, VerifyReport

    return VerifyReport(
        checked=int(data["checked"]),
        head_seq=int(data["head"]["seq"]),
        head_hash=str(data["head"]["hash"]),
        problems=[AuditProblem(p["kind"], int(p["seq"]), p["message"]) for p in data["problems"]],
    )


class RemoteAudit:
    """``rt.audit`` in remote mode. Exporting needs an admin token; the rest a viewer's."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self._http = runtime.transport

    def list(
        self,
        *,
        object_type: str | None = None,
        object_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> builtins.list[AuditEvent]:
        """Events, newest first (see :meth:`AuditService.list`); pages of up to 10,000
        are fetched until ``limit`` events are read."""
        from milepost.stores.audit import AuditEvent

        check.integer(limit, "limit", minimum=1)
        if before_seq is not None:
            check.integer(before_seq, "before_seq", minimum=1)
        params = _filters(
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            action=action,
            since_ms=since_ms,
            until_ms=until_ms,
        )
        out: builtins.list[AuditEvent] = []
        token = None if before_seq is None else str(before_seq)
        while len(out) < limit:
            page = min(limit - len(out), 10_000)
            answer = self._http.request(
                "GET", "/audit/events", params={**params, "limit": page, "page_token": token}
            )
            out += [record_from_dict(AuditEvent, e) for e in answer["items"]]
            token = answer.get("next_page_token")
            if token is None:
                break
        return out

    def head(self) -> tuple[int, str]:
        """The newest event's ``(seq, hash)``."""
        answer = self._http.request("GET", "/audit/head")
        return int(answer["seq"]), str(answer["hash"])

    def head_anchor(self) -> str:
        """The head as ``SEQ:HASH``."""
        seq, digest = self.head()
        return f"{seq}:{digest}"

    def verify(self, *, expect_head: str | None = None, anchor: str | None = None) -> VerifyReport:
        """Walk the whole chain on the server and cross-check the current state."""
        for value, what in ((expect_head, "expect_head"), (anchor, "anchor")):
            if value is not None and not isinstance(value, str):
                raise InvalidInput(
                    f"Expected head {check.short_repr(value)} ({what}) is not text: give "
                    "SEQ:HASH or HASH.",
                    hint="Use the value printed by `milepost audit head`.",
                )
        answer = self._http.request(
            "GET", "/audit/verify", params={"expect_head": expect_head, "anchor": anchor}
        )
        return _report(answer)

    @staticmethod
    def verify_export(
        source: IO[str] | str | Path, *, partial: bool = False, expect_head: str | None = None
    ) -> VerifyReport:
        """Check an exported trail here, away from any store (as embedded mode does)."""
        from milepost.governance.audit import AuditService

        return AuditService.verify_export(source, partial=partial, expect_head=expect_head)

    def export(
        self,
        dest: IO[str] | str | Path,
        *,
        object_type: str | None = None,
        object_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> ExportSummary:
        """Stream the matching events (JSON lines, oldest first) into ``dest`` (admin).

        A path is written beside itself and renamed at the end: a failed export leaves
        no partial file.
        """
        params = _filters(
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            action=action,
            since_ms=since_ms,
            until_ms=until_ms,
        )
        from milepost.governance.audit import export_to

        return export_to(dest, lambda out: self._export(out, params))

    def _export(self, out: IO[str], params: dict[str, Any]) -> ExportSummary:
        from milepost.governance.audit import ExportSummary

        response = self._http.send("GET", "/audit/export", params=params, stream=True)
        try:
            summary = json.loads(response.headers[SUMMARY_HEADER])
            for text in response.iter_text():
                out.write(text)
        except (KeyError, ValueError) as exc:
            raise MilepostError(
                f"The server's audit export has no readable summary ({exc}).",
                hint="Is MILEPOST_URL a Milepost server of the same version?",
            ) from None
        finally:
            response.close()
        return record_from_dict(ExportSummary, summary)


class RemoteRoles:
    """``rt.roles`` in remote mode (granting and revoking need an admin token)."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self._http = runtime.transport

    def list(self) -> builtins.list[RoleGrant]:
        """Every grant, by role then actor."""
        from milepost.governance.roles import RoleGrant

        answer = self._http.request("GET", "/roles")
        return [record_from_dict(RoleGrant, g) for g in answer["items"]]

    def has(self, actor: str, role: str) -> bool:
        """Whether ``actor`` holds ``role``."""
        from milepost.governance.roles import _actor, _role

        _actor(actor)
        _role(role)
        return any(g.actor == actor for g in self._grants(role))

    def holders(self, role: str) -> builtins.list[str]:
        """Everyone holding ``role``."""
        from milepost.governance.roles import _role

        _role(role)
        return sorted(g.actor for g in self._grants(role))

    def _grants(self, role: str) -> builtins.list[RoleGrant]:
        from milepost.governance.roles import RoleGrant

        answer = self._http.request("GET", "/roles", params={"role": role})
        return [record_from_dict(RoleGrant, g) for g in answer["items"]]

    def grant(self, actor: str, role: str) -> builtins.list[RoleGrant]:
        """Give ``actor`` a role (audited); returns the grants made."""
        from milepost.governance.roles import RoleGrant

        answer = self._http.request("POST", "/roles", json=body(user=actor, role=role))
        return [record_from_dict(RoleGrant, g) for g in answer["items"]]

    def revoke(self, actor: str, role: str) -> None:
        """Take a role away from ``actor`` (audited)."""
        self._http.request("DELETE", f"/roles/{seg(actor, 'User')}/{seg(role, 'Role')}")


class RemoteTokens:
    """``rt.tokens`` in remote mode (everything but ``authenticate`` needs an admin)."""

    def __init__(self, runtime: RemoteRuntime) -> None:
        self._runtime = runtime
        self._http = runtime.transport

    def create(
        self,
        name: str,
        role: str = "member",
        *,
        user: str | None = None,
        expires_in_days: float | None = 90,
        project: str | None = None,
    ) -> tuple[ApiToken, str]:
        """A new token and its secret (shown this once)."""
        from milepost.governance.tokens import ApiToken

        payload = body(
            name=name, role=role, user=user, expires_in_days=expires_in_days, project=project
        )
        answer = self._http.request("POST", "/tokens", json=payload)
        return record_from_dict(ApiToken, answer["token"]), str(answer["secret"])

    def list(self, *, include_revoked: bool = False) -> builtins.list[ApiToken]:
        """Every token, newest first (never a secret)."""
        from milepost.governance.tokens import ApiToken

        check.boolean(include_revoked, "include_revoked")
        answer = self._http.request("GET", "/tokens", params={"include_revoked": include_revoked})
        return [record_from_dict(ApiToken, t) for t in answer["items"]]

    def get(self, ref: str) -> ApiToken:
        """A token by id or name."""
        from milepost.governance.tokens import ApiToken

        return record_from_dict(ApiToken, self._http.request("GET", f"/tokens/{seg(ref, 'Token')}"))

    def revoke(self, ref: str, *, reason: str | None = None) -> ApiToken:
        """Revoke a token: refused from the next request on."""
        from milepost.governance.tokens import ApiToken

        answer = self._http.request(
            "POST", f"/tokens/{seg(ref, 'Token')}/revoke", json=body(reason=reason)
        )
        return record_from_dict(ApiToken, answer)

    def authenticate(self, secret: str) -> Principal:
        """Who ``secret`` is, as the server sees it (``GET /whoami`` with that token)."""
        from milepost.client._transport import Transport
        from milepost.governance.tokens import Principal

        check.string(secret, "A token")
        probe = Transport(self._http.url, secret)
        try:
            return record_from_dict(Principal, probe.request("GET", "/whoami"))
        finally:
            probe.close()
