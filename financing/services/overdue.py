"""Overdue: late fees accrued by the day per receivable, on the books and on the chain, capped,
then non-accrual, then the blacklist.

Each receivable is overdue from its own due date: an advance against invoices due on different
days is overdue as soon as its first unpaid receivable is, and a late fee runs only on the
principal (the advance) of the receivables past due and still assigned, never on the rest.
A receivable's late fees stop at the facility's cap (a share of its principal) and after the
facility's ``non_accrual_after_days`` past due; the advance is then flagged non-accrual for
officers (``Advance.non_accrual_on``).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef

from financing import accounts
from financing.books.services import Leg, journal_post
from financing.business_day import business_day
from financing.locks import advance_qs_for_update, merchant_chain_lock
from financing.models import Advance, Assignment, Blacklisting, Facility
from financing.pricing import DayCount, late_fee, late_fee_cap
from ledger.events import system_event
from ledger.money import format_minor_units
from ledger.services import NewEntry, entries_append

logger = logging.getLogger(__name__)


def overdue_sweep(*, now: datetime) -> int:
    """Mark advances with a receivable past due, accrue late fees up to today per receivable,
    flag non-accrual, blacklist the long overdue.

    Idempotent per day: each advance accrues at most once a day (journal key and chain ref carry
    the date), so a retried or doubled run changes nothing. Returns how many advances it touched.
    One advance's failure is logged and the sweep goes on, so nothing is raised.
    """
    today = business_day(now)
    past_due = Assignment.objects.filter(
        advance=OuterRef("pk"), status=Assignment.Status.ASSIGNED, due_date__lt=today
    )
    due = Advance.objects.filter(status__in=Advance.OUTSTANDING).filter(Exists(past_due))
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
    since = advance.late_fee_accrued_to
    if advance.status not in Advance.OUTSTANDING or (since is not None and since >= today):
        return False
    overdue = list(
        advance.assignments.filter(status=Assignment.Status.ASSIGNED, due_date__lt=today).order_by(
            "id"
        )
    )
    if not overdue:
        return False
    facility = advance.facility
    fee = sum(_receivable_accrue(a, facility, since, today) for a in overdue)
    merchant_chain_lock(merchant_id=advance.merchant_id)  # before the accounts: financing.locks
    if fee:
        book = accounts.Chart(advance.merchant, advance.currency)
        journal_post(
            key=f"late:{advance.ref}:{today.isoformat()}",
            memo=f"Late fee on {advance.ref} to {today}",
            legs=[Leg(book.advances_receivable(), fee), Leg(book.late_fee_income(), -fee)],
            now=now,
            merchant_id=advance.merchant_id,
        )
    oldest_due = min(a.due_date for a in overdue)
    days_past_due = (today - oldest_due).days
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
    if advance.non_accrual_on is None and days_past_due >= facility.non_accrual_after_days:
        advance.non_accrual_on = oldest_due + timedelta(days=facility.non_accrual_after_days)
    advance.save(
        update_fields=["status", "late_fee_minor", "late_fee_accrued_to", "non_accrual_on"]
    )
    if days_past_due >= facility.blacklist_after_days:
        _blacklist_for_overdue(advance, days_past_due, now)
    return True


def _receivable_accrue(
    assignment: Assignment, facility: Facility, since: date | None, today: date
) -> int:
    """Accrue one receivable's late fee from ``since`` (or its due date) to ``today``, within its
    non-accrual horizon and its cap; return the fee (0 once capped or non-accrual)."""
    start = max(since or assignment.due_date, assignment.due_date)
    stop = min(today, assignment.due_date + timedelta(days=facility.non_accrual_after_days))
    room = late_fee_cap(assignment.advance_minor, facility.late_fee_cap_bp)
    room -= assignment.late_fee_minor
    # Only what is still unpaid bears late fees: the principal less what payouts repaid.
    unpaid = assignment.advance_minor - assignment.principal_repaid_minor
    if stop <= start or room <= 0 or unpaid <= 0:
        return 0
    fee = late_fee(
        unpaid,
        facility.late_fee_rate_bp,
        (stop - start).days,
        DayCount(facility.day_count),
    )
    fee = min(fee, room)
    if fee:
        Assignment.objects.filter(pk=assignment.pk).update(late_fee_minor=F("late_fee_minor") + fee)
    return fee


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
