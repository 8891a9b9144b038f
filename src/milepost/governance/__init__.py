"""Governance: the audit trail and roles (lineage, model cards and fairness come later)."""

from milepost.governance.audit import AuditProblem, AuditService, VerifyReport
from milepost.governance.roles import KNOWN_ROLES, RoleGrant, RoleService

__all__ = [
    "KNOWN_ROLES",
    "AuditProblem",
    "AuditService",
    "RoleGrant",
    "RoleService",
    "VerifyReport",
]
