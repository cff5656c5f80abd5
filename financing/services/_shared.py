"""Helpers the financing use cases share: the officer check, constraint names, a voided approval,
and the proposal every four-eyes change starts as."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F

from financing.exceptions import NotPermitted, WrongState
from financing.models import Advance, Assignment, Facility, RiskChange


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


def proposal_record(
    *,
    kind: RiskChange.Kind,
    target: str,
    officer: User,
    reason: str,
    now: datetime,
    before: Mapping[str, Any],
    payload: Mapping[str, Any],
) -> RiskChange:
    """Record a proposal for a senior officer; ``<thing>_propose`` checks officer and terms first.

    :raises WrongState: no reason, or a proposal for the same target is already open.
    """
    if not reason.strip():
        raise WrongState("Say why: the senior officer who confirms reads it.")
    try:
        with transaction.atomic():
            return RiskChange.objects.create(
                kind=kind,
                target=target,
                before=dict(before),
                payload=dict(payload),
                reason=reason.strip(),
                proposed_by=officer,
                proposed_at=now,
            )
    except IntegrityError as exc:
        if "riskchange_one_open_per_target" in constraint_name(exc):
            raise WrongState(
                "A change of this is already proposed; a senior officer confirms or rejects "
                "it first."
            ) from None
        raise


def proposal_confirmed_require(change: RiskChange, kind: RiskChange.Kind) -> None:
    """Refuse to apply what is not a confirmed change of ``kind`` (each applier checks)."""
    if change.kind != kind or change.status != RiskChange.Status.CONFIRMED:
        raise WrongState("Only a confirmed change applies.")


def holds_release(advance: Advance) -> None:
    """Free a closed request's receivables and its facility room; the caller holds its lock."""
    advance.assignments.filter(status=Assignment.Status.HELD).update(
        status=Assignment.Status.RELEASED
    )
    Facility.objects.filter(pk=advance.facility_id).update(
        committed_minor=F("committed_minor") - advance.advance_minor
    )
