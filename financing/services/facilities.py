"""Facilities: credit lines opened and changed under four-eyes, each change audited term by term.

An officer proposes (``facility_open_propose``, ``facility_change_propose``); the terms apply
only when a different senior officer confirms (``financing.services.proposals.change_confirm``),
which calls the ``*_apply`` service here in its own transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from financing.exceptions import FacilityInvalid
from financing.locks import facility_qs_for_update
from financing.models import Advance, Facility, FacilityChange, RiskChange
from financing.pricing import DayCount
from financing.services._shared import (
    approval_void,
    constraint_name,
    officer_require,
    proposal_confirmed_require,
    proposal_record,
)
from financing.services.quotes import advance_requote_send
from ledger.money import MoneyError, currency_exponent
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


def facility_open_propose(
    *,
    merchant: Merchant,
    currency: str,
    officer: User,
    reason: str,
    now: datetime,
    terms: Mapping[str, Any],
) -> RiskChange:
    """Propose a credit line; it opens when a different senior officer confirms.

    :raises NotPermitted: the officer may not add facilities.
    :raises FacilityInvalid: no reason, unknown terms, an unknown currency, or terms that break
        a rule.
    :raises WrongState: an opening for this merchant and currency is pending.
    """
    officer_require(officer, "financing.add_facility")
    if not reason.strip():
        raise FacilityInvalid("Say why the facility is opened.")
    _terms_check(terms)
    try:
        currency_exponent(currency)
    except MoneyError as exc:
        raise FacilityInvalid(str(exc)) from None
    _rules_check(Facility(merchant=merchant, currency=currency, **terms))
    return proposal_record(
        kind=RiskChange.Kind.FACILITY_OPEN,
        target=f"facility-open:{merchant.pk}:{currency}",
        officer=officer,
        reason=reason,
        now=now,
        before={},
        payload={"merchant": merchant.pk, "currency": currency, "terms": dict(terms)},
    )


def facility_change_propose(
    *,
    facility: Facility,
    officer: User,
    reason: str,
    now: datetime,
    changes: Mapping[str, Any],
) -> RiskChange:
    """Propose new terms for a facility; they apply when a different senior officer confirms.

    :raises NotPermitted: the officer may not change facilities.
    :raises FacilityInvalid: no reason, no term changes, unknown terms, or terms that break a
        rule (a limit below what is committed, rates out of range).
    :raises WrongState: a change of this facility is pending already.
    """
    officer_require(officer, "financing.change_facility")
    if not reason.strip():
        raise FacilityInvalid("Say why the facility changes.")
    _terms_check(changes)
    current = Facility.objects.get(pk=facility.pk)
    before = _terms_of(current)
    changed = {name: value for name, value in changes.items() if before[name] != value}
    if not changed:
        raise FacilityInvalid("No term changed: there is nothing to propose.")
    for name, value in changed.items():
        setattr(current, name, value)
    _rules_check(current)
    return proposal_record(
        kind=RiskChange.Kind.FACILITY_CHANGE,
        target=f"facility:{facility.pk}",
        officer=officer,
        reason=reason,
        now=now,
        before={name: before[name] for name in changed},
        payload=changed,
    )


def facility_open_apply(*, change: RiskChange, now: datetime) -> Facility:
    """Open the line a confirmed proposal describes; the opening starts its audit trail.

    :raises WrongState: ``change`` is not a confirmed facility opening.
    :raises FacilityInvalid: the terms break a database rule now (a line opened meanwhile).
    """
    proposal_confirmed_require(change, RiskChange.Kind.FACILITY_OPEN)
    payload = change.payload
    try:
        with transaction.atomic():
            facility = Facility.objects.create(
                merchant_id=payload["merchant"], currency=payload["currency"], **payload["terms"]
            )
            _audit(facility, change, before={}, now=now)
    except IntegrityError as exc:
        raise FacilityInvalid(f"The terms break a rule: {constraint_name(exc)}.") from None
    return facility


def facility_change_apply(*, change: RiskChange, now: datetime) -> Facility:
    """Apply a confirmed change of terms, audit it, and send the line's open advances back to
    be priced again (:func:`advances_requote_on_terms_change`).

    :raises WrongState: ``change`` is not a confirmed facility change.
    :raises FacilityInvalid: the terms break a database rule now (the commitments grew past a
        lowered limit since the proposal).
    """
    proposal_confirmed_require(change, RiskChange.Kind.FACILITY_CHANGE)
    facility_id = int(change.target.removeprefix("facility:"))
    try:
        with transaction.atomic():
            locked = facility_qs_for_update().get(pk=facility_id)
            before = _terms_of(locked)
            for name, value in change.payload.items():
                setattr(locked, name, value)
            locked.version += 1
            locked.save()
            _audit(locked, change, before=before, now=now)
            advances_requote_on_terms_change(
                facility=locked, why=f"Facility terms changed ({change.reason}).", now=now
            )
    except IntegrityError as exc:
        raise FacilityInvalid(f"The terms break a rule: {constraint_name(exc)}.") from None
    return locked


def advances_requote_on_terms_change(*, facility: Facility, why: str, now: datetime) -> None:
    """Send the facility's pending advances back to be priced under its new terms.

    A change never applies to an advance already requested as it stands: one whose price
    changes waits for its merchant to accept the new quote (``advance_requote_send``); an
    approval under the old terms loses its hash and returns to the queue even at the same
    price. The caller holds the facility's lock.
    """
    for advance in facility.advances.filter(status__in=Advance.PENDING).order_by("pk"):
        if advance_requote_send(advance=advance, now=now, reason=why):
            continue
        advance.refresh_from_db()
        if advance.status == Advance.Status.APPROVED:
            approval_void(advance, why)


def _audit(
    facility: Facility, change: RiskChange, *, before: dict[str, Any], now: datetime
) -> None:
    FacilityChange.objects.create(
        facility=facility,
        officer=change.proposed_by,
        changed_at=now,
        before=before,
        after=_terms_of(facility),
        reason=change.reason,
        proposal=change,
    )


def _terms_check(terms: Mapping[str, Any]) -> None:
    unknown = set(terms) - set(FACILITY_TERMS)
    if unknown:
        raise FacilityInvalid(f"Unknown facility terms: {', '.join(sorted(unknown))}.")
    if "day_count" in terms and terms["day_count"] not in DayCount.values:
        raise FacilityInvalid(f"Day count must be one of {', '.join(DayCount.values)}.")
    for name, value in terms.items():
        if name not in ("day_count", "active") and (type(value) is not int or value < 0):
            raise FacilityInvalid(f"{name} must be a whole number, not {value!r}.")


def _rules_check(facility: Facility) -> None:
    """The database's rules, checked when proposed so the senior sees terms that can apply."""
    try:
        facility.validate_constraints()
    except ValidationError as exc:
        raise FacilityInvalid(f"The terms break a rule: {' '.join(exc.messages)}") from None


def _terms_of(facility: Facility) -> dict[str, Any]:
    return {name: getattr(facility, name) for name in FACILITY_TERMS}
