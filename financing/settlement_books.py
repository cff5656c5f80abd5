"""One settlement's money and chain entries, gathered while its lines are applied and written
at the end in one journal entry and one chain append.

Recourse is netted here: the merchant's open recourse (its account's balance, read under the
chain lock every recourse change takes) is kept back from whatever is paid out to it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime
from typing import Any

from django.conf import settings

from financing import accounts
from financing.books.services import Leg, journal_post
from financing.models import Payment
from financing.services.payments import payment_record_later
from ledger.event_fields import REF_MAX_LENGTH
from ledger.events import ValidEvent, system_event
from ledger.money import format_minor_units
from ledger.services import NewEntry, entries_append
from merchants.models import Merchant


def chain_ref(*parts: object) -> str:
    """A chain ref made of ``parts``, or its SHA-256 when too long for a ref."""
    readable = ":".join(str(part) for part in parts)
    if len(readable) <= REF_MAX_LENGTH:
        return readable
    return "sha256-" + hashlib.sha256(readable.encode()).hexdigest()


class SettlementBooks:
    """Legs and chain events of one settlement of one merchant in one currency."""

    def __init__(self, *, merchant: Merchant, currency: str, now: datetime) -> None:
        self.merchant = merchant
        self.currency = currency
        self.now = now
        self.chart = accounts.Chart(merchant, currency)
        self.chart.prefetch()  # under the chain lock, so the recourse balance below is current
        self._deltas: dict[str, int] = defaultdict(int)
        self._events: list[ValidEvent] = []
        # Debit positive: what the merchant owes on recourse now, as this settlement goes.
        self.recourse_open = max(0, self.chart.recourse_receivable().balance_minor)

    def move(self, amount_minor: int, *, debit: str, credit: str) -> None:
        """Move ``amount_minor`` from the account ``credit`` to ``debit`` (Chart method names)."""
        if amount_minor:
            self._deltas[debit] += amount_minor
            self._deltas[credit] -= amount_minor

    def pay_merchant(self, amount_minor: int, *, debit: str) -> int:
        """Pay ``amount_minor`` to the merchant out of ``debit``, keeping back the recourse it
        owes; return what was kept back."""
        netted = min(amount_minor, self.recourse_open)
        self.recourse_open -= netted
        self.move(netted, debit=debit, credit="recourse_receivable")
        self.move(amount_minor - netted, debit=debit, credit="disbursement_clearing")
        return netted

    def recourse_raise(self, amount_minor: int, *, credit: str) -> None:
        self.recourse_open += amount_minor
        self.move(amount_minor, debit="recourse_receivable", credit=credit)

    def event(self, type_: str, ref: str, data: dict[str, Any]) -> None:
        self._events.append(system_event(type_, ref, self.now, {"currency": self.currency, **data}))

    def amount(self, minor: int) -> str:
        return format_minor_units(minor, self.currency)

    def write(self, *, key: str, memo: str) -> None:
        """Append the chain entries, record the payment to the merchant and post the journal
        entry; the caller holds the locks.

        :raises WrongState: ``key`` caused a different payment before.
        """
        legs = [
            Leg(getattr(self.chart, name)(), minor)
            for name, minor in sorted(self._deltas.items())
            if minor
        ]
        # What pay_merchant sent out through disbursement clearing, less anything netted back
        # in the same entry: one payment for the merchant's total, caused by this entry.
        released = -self._deltas.get("disbursement_clearing", 0)
        if released > 0:
            payment_record_later(
                merchant=self.merchant,
                kind=Payment.Kind.RELEASE,
                currency=self.currency,
                amount_minor=released,
                source_key=f"release:{key}",
                now=self.now,
            )()
        if self._events:
            entries_append(
                source=settings.LEDGER_SYSTEM_SOURCE,
                entries=[NewEntry(merchant_id=self.merchant.pk, event=e) for e in self._events],
                now=self.now,
            )
        # Last: posting locks the merchant's accounts and its shards of the bank's accounts
        # (no row another merchant's settlement needs), held from here to the commit.
        if legs:
            journal_post(key=key, memo=memo, legs=legs, now=self.now, merchant_id=self.merchant.pk)
