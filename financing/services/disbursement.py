"""Disbursement: the money leaves the bank, the receivables become the bank's, the chain and the
marketplaces hear of it. Reached from the maker's approval below the checker threshold and from
the checker's authorization above it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import transaction

from financing import accounts, tasks
from financing.books.services import Leg, journal_post
from financing.exceptions import WrongState
from financing.models import Advance, Assignment, Payment, assignment_entry_ref
from financing.notices import notices_create_later, seller_ids_later
from financing.services.payments import payment_record_later
from ledger.events import system_event
from ledger.money import format_minor_units
from ledger.services import NewEntry, entries_append
from ledger.sql import one_round_trip, rowcount_later


def advance_disburse(*, advance: Advance, now: datetime) -> Advance:
    """Pay out an approved advance: assign its receivables, post the journal, record the payment
    of the net advance, extend the chain and write a notice for each debtor, to be sent once the
    transaction commits.

    The caller decided it, in its transaction: it holds the advance's lock and the merchant's
    chain lock (``financing.locks``, taken before it re-checked the evidence, so before the
    accounts this locks) and has set the approval (and the authorization, above the threshold)
    on ``advance``, which this saves with the disbursement. Money moves in that transaction.

    The price must be the one the merchant accepted, disbursed before that quote expires; the
    caller re-priced it first (``financing.services.quotes``), and two CHECKs hold it too.

    :raises WrongState: the advance is not approved and open, not at the accepted price, the
        accepted quote expired, or a receivable left it.
    """
    if advance.status not in Advance.OPEN or advance.approved_by_id is None:
        raise WrongState(f"Advance {advance.ref} is not approved for disbursement.")
    if advance.accepted_hash != advance.price_hash or now > advance.quote_expires_at:
        raise WrongState(f"Advance {advance.ref} is not at a price its merchant accepted today.")
    with transaction.atomic(savepoint=False):
        advance.status = Advance.Status.DISBURSED
        advance.disbursed_at = now
        advance.decided_at = now
        book = accounts.Chart(advance.merchant, advance.currency)
        # The two updates and the payment wait on no rows: they go with the reads of the
        # seller ids the notices name and of the chart, in one round trip.
        with one_round_trip():
            advance.changes_save()
            assigned = _assigned_later(advance)
            seller_ids = seller_ids_later(advance)
            paid = _payment_later(advance, now)
            book.prefetch()  # four accounts in one query; journal_post locks them
        assignments = advance.assignments_by_id()  # rows are never added to an advance
        if assigned() != len(assignments):
            raise WrongState(f"Advance {advance.ref} lost a receivable before disbursement.")
        paid()
        for assignment in assignments:  # as stored, for whoever reads the advance's rows next
            assignment.status = Assignment.Status.ASSIGNED
        # Opening a chart's account for the first time may meet a concurrent first opening
        # and recover from it (get_or_create): not in a pipeline, where an error aborts the rest.
        legs = _nonzero(
            Leg(book.advances_receivable(), advance.face_minor),
            Leg(book.disbursement_clearing(), -(advance.advance_minor - advance.fee_minor)),
            # Withheld now, earned day by day (financing.services.fee_accrual).
            Leg(book.unearned_discount(), -advance.fee_minor),
            Leg(book.reserve_payable(), -advance.reserve_minor),
        )
        # The notices wait on nothing the journal writes: their INSERT goes in its round trip.
        # (A journal refusal ends the disbursement, and the transaction takes them back.)
        with one_round_trip():
            notices = notices_create_later(advance=advance, seller_ids=seller_ids(), now=now)
            journal_post(
                key=f"disburse:{advance.ref}",
                memo=f"Advance {advance.ref} disbursed to {advance.merchant.legal_name}",
                legs=legs,
                now=now,
            )
        _chain_disbursement(advance, assignments, now)
        for notice in notices():  # each sent once the transaction commits
            tasks.notice_send_on_commit(notice.pk)
    return advance


def _payment_later(advance: Advance, now: datetime) -> Callable[[], object]:
    """Record the payment of what leaves disbursement clearing (``payment_record_later``),
    if anything does; return what checks it."""
    if advance.advance_minor <= advance.fee_minor:
        return lambda: None
    return payment_record_later(
        merchant=advance.merchant,
        kind=Payment.Kind.DISBURSEMENT,
        currency=advance.currency,
        amount_minor=advance.advance_minor - advance.fee_minor,
        source_key=f"disburse:{advance.ref}",
        now=now,
    )


def _assigned_later(advance: Advance) -> Callable[[], int]:
    """Assign the receivables ``advance`` holds to the bank; return what tells how many it
    held (inside ``one_round_trip``, once the statements sent with it are answered).

    Plain SQL: the ORM's UPDATE cost twice what running it does.
    """
    return rowcount_later(
        "UPDATE financing_assignment SET status = %s WHERE advance_id = %s AND status = %s",
        [Assignment.Status.ASSIGNED.value, advance.pk, Assignment.Status.HELD.value],
    )


def _nonzero(*legs: Leg) -> list[Leg]:
    return [leg for leg in legs if leg.amount_minor]


def _chain_disbursement(advance: Advance, assignments: list[Assignment], now: datetime) -> None:
    money = {"currency": advance.currency}
    disbursed = system_event(
        "advance.disbursed",
        advance.ref,
        now,
        {
            **money,
            "amount": format_minor_units(advance.advance_minor, advance.currency),
            "advance_ref": advance.ref,
            "fee": format_minor_units(advance.fee_minor, advance.currency),
            "reserve": format_minor_units(advance.reserve_minor, advance.currency),
            "due_date": advance.due_date.isoformat(),
            "invoice_refs": [a.invoice_ref for a in assignments],
        },
    )
    assigned = [
        system_event(
            "receivable.assigned",
            assignment_entry_ref(invoice_ref=a.invoice_ref, advance_ref=advance.ref),
            now,
            {
                **money,
                "amount": format_minor_units(a.face_minor, advance.currency),
                "invoice_ref": a.invoice_ref,
                "advance_ref": advance.ref,
                "assignee": accounts.ASSIGNEE_NAME,
            },
        )
        for a in assignments
    ]
    entries_append(
        source=settings.LEDGER_SYSTEM_SOURCE,
        entries=[
            NewEntry(merchant_id=advance.merchant_id, event=e) for e in (disbursed, *assigned)
        ],
        now=now,
    )
