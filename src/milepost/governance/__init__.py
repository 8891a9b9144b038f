"""Governance: the audit trail (lineage, model cards and fairness audits come later)."""

from milepost.governance.audit import AuditProblem, AuditService, VerifyReport

__all__ = ["AuditProblem", "AuditService", "VerifyReport"]
