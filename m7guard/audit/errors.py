"""Errors of the audit."""

from m7guard.errors import M7guardError


class AuditError(M7guardError):
    """The audit itself could not run (exit code 1): bad inventory, catalog, profile or tool."""
