"""Helpers the financing use cases share: the officer check, constraint names, a voided approval."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import IntegrityError
from django.db.models import F

from financing.exceptions import NotPermitted
from financing.models import Advance, Assignment, Facility


def officer_require(officer: User, permission: str) -> None:
    """Let only active staff holding ``permission`` act.

    :raises NotPermitted: the officer is inactive, not staff, or lacks the permission.
    """
    if not (officer.is_active and getattr(officer, "is_staff", False)):
        raise NotPermitted("Only active staff act on financing.")
    if not officer.has_perm(permission):
        raise NotPermitted(f"Missing permission {permission}.")


def constraint_name(exc: IntegrityError) -> str:
    """The PostgreSQL constraint behind ``exc``, or the error's first line elsewhere."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) or str(exc).splitlines()[0]


def approval_void(advance: Advance, why: str) -> None:
    """Send an approved advance back to the review queue; the caller holds its lock."""
    advance.status = Advance.Status.REQUESTED
    advance.approved_by = None
    advance.approved_at = None
    advance.approval_hash = ""
    advance.decision_note = f"Approval void: {why}"
    advance.save()


def holds_release(advance: Advance) -> None:
    """Free a closed request's receivables and its facility room; the caller holds its lock."""
    advance.assignments.filter(status=Assignment.Status.HELD).update(
        status=Assignment.Status.RELEASED
    )
    Facility.objects.filter(pk=advance.facility_id).update(
        committed_minor=F("committed_minor") - advance.advance_minor
    )
