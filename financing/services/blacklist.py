"""The blacklist: officers bar a merchant from new advances; lifting the bar is four-eyes.

The overdue sweep blacklists on its own (``financing.services.overdue``); lifting is the same
here whoever put the merchant on the list: one officer proposes it with a reason, a different
senior officer confirms (``financing.services.proposals``).
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.exceptions import WrongState
from financing.models import Blacklisting, RiskChange
from financing.services._shared import (
    officer_require,
    proposal_confirmed_require,
    proposal_record,
)
from merchants.models import Merchant


def blacklist_add(*, merchant: Merchant, officer: User, reason: str, now: datetime) -> Blacklisting:
    """Blacklist a merchant: no new advances until an officer lifts it.

    :raises NotPermitted: the officer may not manage the blacklist.
    :raises WrongState: no reason, or the merchant is already blacklisted.
    """
    officer_require(officer, "financing.manage_blacklist")
    if not reason.strip():
        raise WrongState("Say why the merchant is blacklisted.")
    try:
        with transaction.atomic():
            return Blacklisting.objects.create(
                merchant=merchant, created_by=officer, created_at=now, reason=reason
            )
    except IntegrityError:
        raise WrongState(f"{merchant.legal_name} is already blacklisted.") from None


def blacklist_lift_propose(
    *, blacklisting: Blacklisting, officer: User, reason: str, now: datetime
) -> RiskChange:
    """Propose lifting a blacklisting, with a written reason; a different senior confirms it.

    :raises NotPermitted: the officer may not manage the blacklist.
    :raises WrongState: no reason, the blacklisting was lifted already, or a lift is pending.
    """
    officer_require(officer, "financing.manage_blacklist")
    if not reason.strip():
        raise WrongState("Lifting a blacklisting needs a written reason.")
    if Blacklisting.objects.filter(pk=blacklisting.pk, lifted_at__isnull=False).exists():
        raise WrongState("This blacklisting was already lifted.")
    return proposal_record(
        kind=RiskChange.Kind.BLACKLIST_LIFT,
        target=f"blacklisting:{blacklisting.pk}",
        officer=officer,
        reason=reason,
        now=now,
        before={"merchant": blacklisting.merchant.legal_name, "reason": blacklisting.reason},
        payload={"blacklisting": blacklisting.pk},
    )


def blacklist_lift_apply(*, change: RiskChange, now: datetime) -> Blacklisting:
    """Lift the blacklisting a confirmed proposal names: by its proposer, for its reason.

    :raises WrongState: ``change`` is not a confirmed lift, or the blacklisting was lifted.
    """
    proposal_confirmed_require(change, RiskChange.Kind.BLACKLIST_LIFT)
    updated = Blacklisting.objects.filter(
        pk=change.payload["blacklisting"], lifted_at__isnull=True
    ).update(
        lifted_at=now, lifted_by=change.proposed_by, lift_reason=change.reason, lift_change=change
    )
    if not updated:
        raise WrongState("This blacklisting was already lifted.")
    return Blacklisting.objects.get(pk=change.payload["blacklisting"])
