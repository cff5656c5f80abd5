"""Overdue: late fees accrued by the day, on the books and on the chain, then the blacklist."""

from __future__ import annotations

import logging
from datetime import date, datetime

from django.conf import settings
from django.db import transaction

from financing import accounts
from financing.books.services import Leg, journal_post
from financing.locks import advance_qs_for_update, merchant_chain_lock
from financing.models import Advance, Blacklisting
from financing.pricing import DayCount, late_fee
from ledger.events import system_event
from ledger.money import format_minor_units
from ledger.services import NewEntry, entries_append

logger = logging.getLogger(__name__)


def overdue_sweep(*, now: datetime) -> int:
    """Mark advances past due, accrue late fees up to today, blacklist the long overdue.

    Idempotent per day: each advance accrues at most once a day (journal key and chain ref carry
    the date), so a retried or doubled run changes nothing. Returns how many advances it touched.
    One advance's failure is logged and the sweep goes on, so nothing is raised.
    """
    today = now.date()
    due = Advance.objects.filter(status__in=Advance.OUTSTANDING, due_date__lt=today)
    touched = 0
    for advance_id in due.values_list("id", flat=True).order_by("id"):
        try:
            with transaction.atomic():
                locked = advance_qs_for_update().select_related("facility", "merchant")
                if _overdue_accrue(locked.get(pk=advance_id), today, now):
                    touched += 1
        except Exception:  # one advance's failure must not stop the others' accrual
            logger.exception("Overdue accrual failed for advance id %s", advance_id)
    return touched


def _overdue_accrue(advance: Advance, today: date, now: datetime) -> bool:
    since = advance.late_fee_accrued_to or advance.due_date
    if advance.status not in Advance.OUTSTANDING or since >= today:
        return False
    facility = advance.facility
    fee = late_fee(
        advance.advance_minor,
        facility.late_fee_rate_bp,
        (today - since).days,
        DayCount(facility.day_count),
    )
    merchant_chain_lock(merchant_id=advance.merchant_id)  # before the accounts: financing.locks
    if fee:
        book = accounts.Chart(advance.merchant, advance.currency)
        journal_post(
            key=f"late:{advance.ref}:{today.isoformat()}",
            memo=f"Late fee on {advance.ref}, {since} to {today}",
            legs=[Leg(book.advances_receivable(), fee), Leg(book.late_fee_income(), -fee)],
            now=now,
        )
    days_past_due = (today - advance.due_date).days
    event = system_event(
        "advance.overdue",
        f"{advance.ref}:overdue:{today.isoformat()}",
        now,
        {
            "currency": advance.currency,
            "amount": format_minor_units(fee, advance.currency),
            "advance_ref": advance.ref,
            "days_past_due": days_past_due,
        },
    )
    entries_append(
        source=settings.LEDGER_SYSTEM_SOURCE,
        entries=[NewEntry(merchant_id=advance.merchant_id, event=event)],
        now=now,
    )
    advance.status = Advance.Status.OVERDUE
    advance.late_fee_minor += fee
    advance.late_fee_accrued_to = today
    advance.save(update_fields=["status", "late_fee_minor", "late_fee_accrued_to"])
    if days_past_due >= facility.blacklist_after_days:
        _blacklist_for_overdue(advance, days_past_due, now)
    return True


def _blacklist_for_overdue(advance: Advance, days: int, now: datetime) -> None:
    # Once per advance: an officer who lifted it, with a reason, is not overruled the next day.
    already = Blacklisting.objects.filter(merchant=advance.merchant, lifted_at__isnull=True)
    if already.exists() or Blacklisting.objects.filter(advance=advance).exists():
        return
    Blacklisting.objects.create(
        merchant=advance.merchant,
        advance=advance,
        created_at=now,
        reason=f"Advance {advance.ref} is {days} days past due.",
    )
