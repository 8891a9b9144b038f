"""Governance: the audit trail, roles and the lineage graph over everything recorded."""

from milepost.governance.audit import AuditProblem, AuditService, VerifyReport
from milepost.governance.lineage import LineageEdge, LineageGraph, LineageNode, LineageService
from milepost.governance.lineage_html import lineage_html, lineage_svg
from milepost.governance.roles import KNOWN_ROLES, RoleGrant, RoleService

__all__ = [
    "KNOWN_ROLES",
    "AuditProblem",
    "AuditService",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "LineageService",
    "RoleGrant",
    "RoleService",
    "VerifyReport",
    "lineage_html",
    "lineage_svg",
]
