"""Suspense: money the bank received that no payout line could be applied to, allocated by hand.

Settlement never guesses: a payout without lines, a line naming no invoice of the merchant, or
what a debtor paid beyond what it owed waits on the merchant's suspense account as a
``SuspenseItem``. An officer proposes where it goes, with a reason: to an invoice of the same
merchant (through the waterfall when the bank finances it) or to the merchant itself, less the
recourse it owes. It moves only when a different senior officer confirms
(``financing.services.proposals``), and then exactly once.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User

from financing.exceptions import WrongState
from financing.models import RiskChange, SuspenseItem
from financing.services._shared import (
    officer_require,
    proposal_confirmed_require,
    proposal_record,
)
from financing.services.settlement import settlement_line_apply
from ledger.events import system_event
from ledger.models import Invoice
from ledger.money import format_minor_units

TO_MERCHANT = "merchant"
ALLOCATE_PERMISSION = "financing.change_suspenseitem"


def suspense_allocate_propose(
    *, item: SuspenseItem, officer: User, target: str, reason: str, now: datetime
) -> RiskChange:
    """Propose where money held in suspense goes: ``target`` is an invoice ref of the item's
    merchant, or "merchant" to pass it through (less recourse the merchant owes).

    :raises NotPermitted: the officer may not allocate suspense.
    :raises WrongState: no reason, the item is allocated already, an allocation of it is
        pending, or the target is no invoice of the merchant in the item's currency.
    """
    officer_require(officer, ALLOCATE_PERMISSION)
    target = target.strip()
    if SuspenseItem.objects.filter(pk=item.pk, status=SuspenseItem.Status.ALLOCATED).exists():
        raise WrongState(f"Suspense item {item.ref} was allocated already.")
    if not target:
        raise WrongState(f'Name an invoice of the merchant, or "{TO_MERCHANT}".')
    if target != TO_MERCHANT and not _invoice_exists(item, target):
        raise WrongState(
            f"Invoice '{target}' is not one of {item.merchant.legal_name}'s in {item.currency}."
        )
    return proposal_record(
        kind=RiskChange.Kind.SUSPENSE_ALLOCATE,
        target=f"suspense:{item.pk}",
        officer=officer,
        reason=reason,
        now=now,
        before={
            "ref": item.ref,
            "merchant": item.merchant.legal_name,
            "currency": item.currency,
            "amount_minor": item.amount_minor,
            "reason": item.reason,
        },
        payload={"item": item.pk, "target": target},
    )


def suspense_allocate_apply(*, change: RiskChange, now: datetime) -> SuspenseItem:
    """Allocate the suspense item a confirmed proposal names, as it names, in the confirming
    transaction: the money applied like a payout line, one journal entry keyed
    ``suspense:<item ref>``, a ``suspense.allocated`` chain entry (and ``receivable.settled``
    when it pays an invoice).

    :raises WrongState: ``change`` is not a confirmed allocation, or the item was allocated.
    :raises SettlementContended: the invoice kept changing advance; confirm again.
    """
    proposal_confirmed_require(change, RiskChange.Kind.SUSPENSE_ALLOCATE)
    target = change.payload["target"]
    # The claim, before settlement's locks: only this path ever locks a suspense item, and only
    # under its proposal's lock, so taking it first cannot deadlock with a settlement.
    claimed = SuspenseItem.objects.filter(
        pk=change.payload["item"], status=SuspenseItem.Status.OPEN
    ).update(status=SuspenseItem.Status.ALLOCATED, allocated_at=now, allocated_to=target)
    if not claimed:
        raise WrongState("This suspense item was allocated already.")
    item = SuspenseItem.objects.select_related("merchant").get(pk=change.payload["item"])
    confirmer = change.decided_by
    if confirmer is None:  # a confirmed change names its decider (riskchange_decision_...)
        raise WrongState("Only a confirmed change applies.")
    invoice_ref = "" if target == TO_MERCHANT else target
    data: dict[str, object] = {
        "currency": item.currency,
        "amount": format_minor_units(item.amount_minor, item.currency),
        "suspense_ref": item.ref,
        "proposed_by": change.proposed_by.get_username(),
        "confirmed_by": confirmer.get_username(),
    }
    if invoice_ref:
        data["invoice_ref"] = invoice_ref
    settlement_line_apply(
        merchant=item.merchant,
        event=system_event("suspense.allocated", item.ref, now, data),
        currency=item.currency,
        invoice_ref=invoice_ref,
        amount_minor=item.amount_minor,
        key=f"suspense:{item.ref}",
        now=now,
    )
    return item


def _invoice_exists(item: SuspenseItem, ref: str) -> bool:
    return Invoice.objects.filter(
        merchant_id=item.merchant_id, ref=ref, currency=item.currency
    ).exists()
