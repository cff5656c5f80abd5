"""The blacklist: officers bar a merchant from new advances, and lift the bar with a reason.

The overdue sweep blacklists on its own (``financing.services.overdue``); lifting is the same
here whoever put the merchant on the list.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.exceptions import WrongState
from financing.models import Blacklisting
from financing.services._shared import officer_require
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


def blacklist_lift(
    *, blacklisting: Blacklisting, officer: User, reason: str, now: datetime
) -> Blacklisting:
    """Lift a blacklisting; only an officer can, and only with a written reason.

    :raises NotPermitted: the officer may not manage the blacklist.
    :raises WrongState: no reason, or the blacklisting was already lifted.
    """
    officer_require(officer, "financing.manage_blacklist")
    if not reason.strip():
        raise WrongState("Lifting a blacklisting needs a written reason.")
    updated = Blacklisting.objects.filter(pk=blacklisting.pk, lifted_at__isnull=True).update(
        lifted_at=now, lifted_by=officer, lift_reason=reason
    )
    if not updated:
        raise WrongState("This blacklisting was already lifted.")
    blacklisting.refresh_from_db()
    return blacklisting
