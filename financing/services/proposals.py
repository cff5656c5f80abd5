"""Four-eyes over what moves risk: one officer proposes, a different senior officer confirms.

Opening a facility or changing its terms, a bank-wide debtor limit, lifting a blacklisting,
clearing a duplicate-invoice flag, allocating money held in suspense, changing a merchant's
bank account and a journal adjustment resolving a reconciliation break are each a
``RiskChange``, written by a ``<thing>_propose`` service in the thing's own module; nothing
changes until ``change_confirm`` applies it, in the transaction that records the confirmation.
The database refuses a decider who is the proposer and a second open proposal for one target.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction

from financing.exceptions import MakerCheckerViolation, WrongState
from financing.models import RiskChange
from financing.reconciliation.breaks import break_adjust_apply
from financing.services._shared import officer_require
from financing.services.bank_accounts import (
    bank_account_change_apply,
    bank_account_change_discard,
)
from financing.services.blacklist import blacklist_lift_apply
from financing.services.debtor_limits import debtor_limit_apply
from financing.services.duplicates import duplicate_clear_apply
from financing.services.facilities import facility_change_apply, facility_open_apply
from financing.services.suspense import suspense_allocate_apply

CONFIRM_PERMISSION = "financing.confirm_riskchange"

_APPLY: dict[str, Callable[..., object]] = {
    RiskChange.Kind.FACILITY_OPEN: facility_open_apply,
    RiskChange.Kind.FACILITY_CHANGE: facility_change_apply,
    RiskChange.Kind.DEBTOR_LIMIT: debtor_limit_apply,
    RiskChange.Kind.BLACKLIST_LIFT: blacklist_lift_apply,
    RiskChange.Kind.DUPLICATE_CLEAR: duplicate_clear_apply,
    RiskChange.Kind.SUSPENSE_ALLOCATE: suspense_allocate_apply,
    RiskChange.Kind.BANK_ACCOUNT_CHANGE: bank_account_change_apply,
    RiskChange.Kind.BREAK_ADJUST: break_adjust_apply,
}

# What a rejection ends besides the proposal itself: a proposed bank account must not linger
# as ``proposed`` (it would read as still pending, and one day be confirmed by mistake).
_DISCARD: dict[str, Callable[..., object]] = {
    RiskChange.Kind.BANK_ACCOUNT_CHANGE: bank_account_change_discard,
}


def change_confirm(*, change: RiskChange, officer: User, now: datetime) -> RiskChange:
    """Confirm another officer's proposal and apply it, both in one transaction.

    :raises NotPermitted: the officer is not a senior officer.
    :raises MakerCheckerViolation: the officer proposed it.
    :raises WrongState: it was decided already.
    :raises FinancingError: applying it is refused (terms that no longer hold); the proposal
        stays open for a senior to reject.
    """
    officer_require(officer, CONFIRM_PERMISSION)
    with transaction.atomic():
        locked = _open_locked(change, officer)
        locked.status = RiskChange.Status.CONFIRMED
        locked.decided_by = officer
        locked.decided_at = now
        locked.save()
        _APPLY[locked.kind](change=locked, now=now)
    return locked


def change_reject(*, change: RiskChange, officer: User, now: datetime, note: str) -> RiskChange:
    """Turn another officer's proposal down, with a note; nothing it proposed applies.

    :raises NotPermitted: the officer is not a senior officer.
    :raises MakerCheckerViolation: the officer proposed it.
    :raises WrongState: no note, or it was decided already.
    """
    officer_require(officer, CONFIRM_PERMISSION)
    if not note.strip():
        raise WrongState("Say why the change is rejected; its proposer reads it.")
    with transaction.atomic():
        locked = _open_locked(change, officer)
        locked.status = RiskChange.Status.REJECTED
        locked.decided_by = officer
        locked.decided_at = now
        locked.decision_note = note.strip()
        locked.save()
        discard = _DISCARD.get(locked.kind)
        if discard is not None:
            discard(change=locked, now=now)
    return locked


def _open_locked(change: RiskChange, officer: User) -> RiskChange:
    locked = RiskChange.objects.select_for_update().get(pk=change.pk)
    if locked.status != RiskChange.Status.PROPOSED:
        raise WrongState(f"This change was {locked.status} already.")
    if locked.proposed_by_id == officer.pk:
        raise MakerCheckerViolation("The officer who proposed a change cannot decide on it.")
    return locked
