"""A later match clears an open break: the break closes by itself, the match (or the ledger
entry that brought what was missing) recorded as its resolution."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.models import Break, Facility, Match, Payment
from financing.reconciliation.decisions import match_confirm
from financing.reconciliation.engine import statement_match
from financing.reconciliation.payments import end_to_end_id_for
from financing.reconciliation.report_breaks import _any_waiting, _waiting
from financing.reconciliation.reports import settlement_report_run, settlement_report_upload
from financing.services.payment_files import payment_batch_create
from financing.services.payments import payment_record_later
from merchants.models import Marketplace, Merchant
from tests.financing.conftest import Trade
from tests.financing.reconciliation.helpers import account_active
from tests.financing.reconciliation.statements import Line, debits_of, statement
from tests.financing.settlement_helpers import disbursed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

VALUE_ON = date(2026, 11, 2)


def late_payment(merchant: Merchant, source_key: str, now: datetime) -> Payment:
    """A payment of 800.00 recorded only now; its end-to-end id follows from its cause."""
    return payment_record_later(
        merchant=merchant,
        kind=Payment.Kind.DISBURSEMENT,
        currency="EUR",
        amount_minor=80_000,
        source_key=source_key,
        now=now,
    )()


def test_an_unmatched_entry_closes_when_its_payment_appears(
    merchant: Merchant, now: datetime
) -> None:
    # The bank executed a payment Chainfin records only later (its row came in after the
    # statement): the entry names the end-to-end id the payment will carry.
    source_key = "disburse:adv_late0000000001"
    statement(
        [Line("debit", 80_000, VALUE_ON, end_to_end_ids=[end_to_end_id_for(source_key)])], now
    )
    assert statement_match(now=now).unmatched == 1
    brk = Break.objects.get(kind=Break.Kind.UNMATCHED_STATEMENT_ENTRY)

    late_payment(merchant, source_key, now)
    assert statement_match(now=now + timedelta(hours=1)).confirmed == 1

    brk.refresh_from_db()
    match = Match.objects.get()
    assert (brk.status, brk.resolved_match, brk.resolved_by) == ("resolved", match, None)
    assert brk.resolved_at == now + timedelta(hours=1)
    assert brk.resolution == (
        f"Cleared by match {match.pk} (rule '{match.rule.name}'), 800.00 EUR."
    )


def test_a_suggested_match_closes_the_break_only_once_confirmed(
    merchant: Merchant, officer: User, now: datetime
) -> None:
    source_key = "disburse:adv_late0000000002"
    e2e = end_to_end_id_for(source_key)
    statement([Line("debit", 80_030, VALUE_ON, end_to_end_ids=[e2e])], now)  # 0.30 off
    statement_match(now=now)
    brk = Break.objects.get(kind=Break.Kind.UNMATCHED_STATEMENT_ENTRY)
    late_payment(merchant, source_key, now)

    assert statement_match(now=now).suggested == 1
    brk.refresh_from_db()
    assert brk.status == "open"  # a suggestion clears nothing until an officer confirms it

    match_confirm(match=Match.objects.get(), officer=officer, now=now)
    brk.refresh_from_db()
    assert (brk.status, brk.resolved_match) == ("resolved", Match.objects.get())


def test_a_payment_missing_from_the_statements_closes_when_a_statement_shows_it(
    trade: Trade, facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    account_active(trade.merchant, officer, senior, now)
    payment_batch_create(currency="EUR", scheme="pain.001.001.09", officer=officer, now=now)
    payment = Payment.objects.get()
    later = now + timedelta(days=7)
    assert statement_match(now=later).not_on_statement == 1
    brk = Break.objects.get(kind=Break.Kind.PAYMENT_NOT_ON_STATEMENT)

    statement(debits_of([payment], VALUE_ON), later)
    assert statement_match(now=later).confirmed == 1

    brk.refresh_from_db()
    assert (brk.status, brk.resolved_match) == ("resolved", Match.objects.get())
    assert Payment.objects.get().status == "booked"


HEADER = b"line_id,payout_ref,invoice_ref,order_ref,currency,amount,paid_to,settled_on\n"


def test_a_report_line_missing_in_the_ledger_closes_when_its_payout_arrives(
    trade: Trade, marketplace: Marketplace, now: datetime
) -> None:
    trade.order("ORD-L1", "100.00")
    trade.invoice("INV-L1", "ORD-L1", "100.00")
    trade.order("ORD-L2", "50.00")
    trade.invoice("INV-L2", "ORD-L2", "50.00")
    report = HEADER + (
        b"L1,PO-LATE,INV-L1,,EUR,100.00,merchant,2026-11-01\n"
        b"L2,PO-LATE,INV-L2,,EUR,45.00,merchant,2026-11-01\n"  # the payout will say 50.00
    )
    upload = settlement_report_upload(
        chunks=[report], file_name="r.csv", marketplace=marketplace, uploaded_by=None, now=now
    )
    job = settlement_report_run(job_id=upload.job.pk, now=now)
    assert job.summary["breaks"] == {"missing_in_ledger": 2}

    trade.append(
        "payout.settled",
        "PO-LATE",
        {
            "currency": "EUR",
            "amount": "150.00",
            "settled_on": "2026-11-01",
            "lines": [
                {"invoice_ref": "INV-L1", "amount": "100.00"},
                {"invoice_ref": "INV-L2", "amount": "50.00"},
            ],
        },
        days_ago=0,
    )

    cleared, different = Break.objects.order_by("reference")
    assert (cleared.reference, cleared.status, cleared.resolved_by) == ("L1", "resolved", None)
    assert cleared.resolved_entry is not None
    assert cleared.resolved_entry.external_ref == "PO-LATE"
    assert cleared.merchant_id == trade.merchant.pk
    assert cleared.resolution.startswith("Matched when payout PO-LATE arrived in the ledger")
    assert (different.reference, different.status) == ("L2", "open")  # 45.00 is not 50.00


def test_the_payout_gate_asks_what_the_breaks_query_asks(
    trade: Trade, marketplace: Marketplace, now: datetime
) -> None:
    """Every payout append asks in SQL whether any report break waits; the ORM's ``_waiting``
    says which. Both agree while one waits, for another marketplace, and once it closed."""
    trade.order("ORD-G1", "100.00")
    trade.invoice("INV-G1", "ORD-G1", "100.00")
    upload = settlement_report_upload(
        chunks=[HEADER + b"G1,PO-GATE,INV-G1,,EUR,100.00,merchant,2026-11-01\n"],
        file_name="r.csv",
        marketplace=marketplace,
        uploaded_by=None,
        now=now,
    )
    settlement_report_run(job_id=upload.job.pk, now=now)
    stranger = Marketplace.objects.create(code="stranger", name="Stranger")

    def agree(codes: list[str]) -> bool:
        assert _any_waiting(codes) == _waiting(set(codes)).exists()
        return _any_waiting(codes)

    assert agree([marketplace.code]) and agree([marketplace.code, stranger.code])
    assert not agree([stranger.code])
    trade.paid("PO-GATE", "INV-G1", "100.00")
    assert Break.objects.get().status == Break.Status.RESOLVED
    assert not agree([marketplace.code])


def test_the_database_refuses_a_resolution_nobody_and_nothing_made(now: datetime) -> None:
    brk = Break.objects.create(
        kind=Break.Kind.UNMATCHED_STATEMENT_ENTRY, key="entry:9", found_at=now
    )
    with pytest.raises(IntegrityError, match="break_resolution_complete"), transaction.atomic():
        Break.objects.filter(pk=brk.pk).update(
            status="resolved", resolved_at=now, resolution="gone by itself"
        )
