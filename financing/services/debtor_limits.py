"""Bank-wide debtor limits: how much the bank lends against one debtor across all merchants.

The marketplace is usually the largest debtor of all. A limit is proposed by one officer and
set when a different senior officer confirms (``financing.services.proposals``); the rule is
checked at quote, approval and authorization (``financing.eligibility``: BANK_DEBTOR_LIMIT).
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User

from financing.eligibility import business_debtor_key
from financing.exceptions import WrongState
from financing.locks import debtor_limit_qs_for_update
from financing.models import DebtorLimit, RiskChange
from financing.services._shared import (
    officer_require,
    proposal_confirmed_require,
    proposal_record,
)
from ledger.money import MAX_MINOR_UNITS, MoneyError, currency_exponent
from merchants.models import Debtor, Marketplace


def debtor_key_of_marketplace(marketplace: Marketplace) -> str:
    """The debtor key of invoices a marketplace owes (as receivables carry it)."""
    return f"marketplace:{marketplace.code}"


def debtor_key_of_business(debtor: Debtor) -> str:
    """The debtor key of a business buyer: its tax id, or its folded name and country."""
    return business_debtor_key(debtor.tax_id, debtor.name, debtor.country)


def debtor_limit_propose(
    *,
    currency: str,
    debtor_key: str,
    debtor_name: str,
    limit_minor: int,
    officer: User,
    reason: str,
    now: datetime,
) -> RiskChange:
    """Propose the bank-wide limit on one debtor in ``currency``; a senior officer confirms it.

    :raises NotPermitted: the officer may not set debtor limits.
    :raises WrongState: no reason, an unknown currency or debtor key, a limit out of range, or
        a change of this limit is pending already.
    """
    officer_require(officer, "financing.change_debtorlimit")
    try:
        currency_exponent(currency)
    except MoneyError as exc:
        raise WrongState(str(exc)) from None
    if not debtor_key.startswith(("marketplace:", "business:", "business-name:")):
        raise WrongState(f"Not a debtor key: {debtor_key!r}.")
    if type(limit_minor) is not int or not 0 <= limit_minor < MAX_MINOR_UNITS:
        raise WrongState("A limit is zero or more, below 10^15 minor units.")
    current = DebtorLimit.objects.filter(currency=currency, debtor_key=debtor_key).first()
    return proposal_record(
        kind=RiskChange.Kind.DEBTOR_LIMIT,
        target=f"debtor-limit:{currency}:{debtor_key}",
        officer=officer,
        reason=reason,
        now=now,
        before={"limit_minor": current.limit_minor if current else None},
        payload={
            "currency": currency,
            "debtor_key": debtor_key,
            "debtor_name": debtor_name,
            "limit_minor": limit_minor,
        },
    )


def debtor_limit_apply(*, change: RiskChange, now: datetime) -> DebtorLimit:
    """Set the limit a confirmed proposal names; approvals from now on are held to it.

    Taken under the limit row's lock, so an approval re-checking the room waits for it.

    :raises WrongState: ``change`` is not a confirmed debtor limit.
    """
    proposal_confirmed_require(change, RiskChange.Kind.DEBTOR_LIMIT)
    payload = change.payload
    identity = {"currency": payload["currency"], "debtor_key": payload["debtor_key"]}
    limit = debtor_limit_qs_for_update().filter(**identity).first()
    if limit is None:
        return DebtorLimit.objects.create(
            **identity, debtor_name=payload["debtor_name"], limit_minor=payload["limit_minor"]
        )
    limit.limit_minor = payload["limit_minor"]
    limit.debtor_name = payload["debtor_name"]
    limit.version += 1
    limit.save()
    return limit
