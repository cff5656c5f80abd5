"""Facilities: credit lines opened and changed by officers, each change audited term by term."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.exceptions import FacilityInvalid
from financing.locks import facility_qs_for_update
from financing.models import Advance, Facility, FacilityChange
from financing.pricing import DayCount
from financing.services._shared import approval_void, constraint_name, officer_require
from merchants.models import Merchant

FACILITY_TERMS = (
    "limit_minor",
    "advance_rate_bp",
    "annual_rate_bp",
    "day_count",
    "max_tenor_days",
    "min_days_to_due",
    "debtor_cap_bp",
    "late_fee_rate_bp",
    "late_fee_cap_bp",
    "non_accrual_after_days",
    "blacklist_after_days",
    "checker_threshold_minor",
    "active",
)


def facility_open(
    *,
    merchant: Merchant,
    currency: str,
    officer: User,
    reason: str,
    now: datetime,
    terms: Mapping[str, Any],
) -> Facility:
    """Open a credit line; the opening is the first entry of its audit trail.

    :raises NotPermitted: the officer may not add facilities.
    :raises FacilityInvalid: no reason, unknown terms, or terms that break a database rule.
    """
    officer_require(officer, "financing.add_facility")
    if not reason.strip():
        raise FacilityInvalid("Say why the facility is opened.")
    _terms_check(terms)
    try:
        with transaction.atomic():
            facility = Facility.objects.create(merchant=merchant, currency=currency, **terms)
            FacilityChange.objects.create(
                facility=facility,
                officer=officer,
                changed_at=now,
                before={},
                after=_terms_of(facility),
                reason=reason,
            )
    except IntegrityError as exc:
        raise FacilityInvalid(f"The terms break a rule: {constraint_name(exc)}.") from None
    return facility


def facility_change(
    *,
    facility: Facility,
    officer: User,
    reason: str,
    now: datetime,
    changes: Mapping[str, Any],
) -> Facility:
    """Change a facility's terms, audit it, and void approvals that relied on the old terms.

    :raises NotPermitted: the officer may not change facilities.
    :raises FacilityInvalid: no reason, unknown terms, or terms that break a database rule
        (a limit below what is committed, rates out of range).
    """
    officer_require(officer, "financing.change_facility")
    if not reason.strip():
        raise FacilityInvalid("Say why the facility changes.")
    _terms_check(changes)
    try:
        with transaction.atomic():
            locked = facility_qs_for_update().get(pk=facility.pk)
            before = _terms_of(locked)
            for name, value in changes.items():
                setattr(locked, name, value)
            locked.version += 1
            locked.save()
            FacilityChange.objects.create(
                facility=locked,
                officer=officer,
                changed_at=now,
                before=before,
                after=_terms_of(locked),
                reason=reason,
            )
            for advance in locked.advances.filter(status=Advance.Status.APPROVED):
                approval_void(advance, f"Facility terms changed ({reason}).")
    except IntegrityError as exc:
        raise FacilityInvalid(f"The terms break a rule: {constraint_name(exc)}.") from None
    return locked


def _terms_check(terms: Mapping[str, Any]) -> None:
    unknown = set(terms) - set(FACILITY_TERMS)
    if unknown:
        raise FacilityInvalid(f"Unknown facility terms: {', '.join(sorted(unknown))}.")
    if "day_count" in terms and terms["day_count"] not in DayCount.values:
        raise FacilityInvalid(f"Day count must be one of {', '.join(DayCount.values)}.")


def _terms_of(facility: Facility) -> dict[str, Any]:
    return {name: getattr(facility, name) for name in FACILITY_TERMS}
