"""Every hot transaction is one merchant's: it writes (and locks) rows of the distributed tables
of that merchant alone, and writes no other table but those allowed beside them.

That is what lets the database be distributed by merchant (README, "Scaling past one machine";
config/distribution.py). Read from PostgreSQL itself (tests/scaleout/touched.py), so a new hot
path or table breaks it here: an ingest, a transfer and a settlement are run as production
runs them, and two negative controls show the check goes red when a transaction touches two
merchants.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from financing.accounts import Chart
from financing.books.services import Leg, account_open, journal_post
from financing.models import Facility
from ledger.events import event_parse, format_timestamp
from ledger.services import NewEntry, entries_append, entry_append
from merchants.models import Merchant
from tests.api.conftest import order_event, signed_client
from tests.bench._setup import repayment_event
from tests.financing.conftest import Trade
from tests.financing.settlement_helpers import disbursed, payout
from tests.scaleout.touched import Touched, transaction_touches

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def one_merchants(touched: Touched, merchant: Merchant) -> None:
    problems = touched.problems()
    assert not problems, "\n".join(problems)
    assert touched.merchants() == {merchant.pk}


def test_an_ingest_batch_writes_one_merchants_rows(trade: Trade, facility: Facility) -> None:
    """A marketplace's batch for one merchant: entries, chain head, projections, receivable."""
    trade.fundable(1)  # history on the chain, so the batch extends it
    raw = [
        ("order.placed", "ORD-B", {"currency": "EUR", "amount": "500.00"}),
        ("invoice.issued", "INV-B", _invoice_data("ORD-B")),
        ("shipment.dispatched", "SHP-B", {"order_ref": "ORD-B"}),
        ("shipment.delivered", "SHP-B", {"order_ref": "ORD-B"}),
    ]
    batch = [
        NewEntry(trade.merchant.pk, event_parse(_raw(type_, ref, data, trade.now)))
        for type_, ref, data in raw
    ]

    with transaction_touches() as touched:
        entries_append(source=trade.source, entries=batch, now=trade.now)

    one_merchants(touched, trade.merchant)
    assert {"ledger_entry", "ledger_chain", "ledger_logpending", "ledger_invoice"}.issubset(
        touched.merchants_written
    )


def test_a_signed_api_batch_writes_one_merchants_rows(merchant: Merchant) -> None:
    api = signed_client(merchant.links.get().marketplace)
    # A key's last use is written outside the ingest's transaction, at most every few minutes
    # (config/api/authentication.py), which a test's enclosing transaction would show as the
    # request's: the first request writes it, the measured one is a later one.
    assert (
        api.post("/api/v1/events", {"events": [order_event(merchant, "ORD-0")]}).status_code == 201
    )
    events = [order_event(merchant, f"ORD-{n}") for n in range(1, 6)]

    with transaction_touches() as touched:
        response = api.post("/api/v1/events", {"events": events})

    assert response.status_code == 201, response.content
    one_merchants(touched, merchant)
    assert "ledger_idempotentrequest" in touched.tables_written  # allowed beside (distribution)


def test_a_transfer_writes_one_merchants_rows(make_merchant: Callable[..., Merchant]) -> None:
    """As tests/bench/transfers_bench.py does one: a chain entry, then two legs on the bank's
    accounts, after another merchant moved the same accounts (its shards stay untouched)."""
    first, second = make_merchant(), make_merchant()
    cash, other = (
        account_open(code=f"bank_{n}:EUR", name=f"Bank {n}", kind="asset", currency="EUR")
        for n in (1, 2)
    )
    _transfer(second, cash, other, "before")
    _transfer(first, other, cash, "earlier")  # so the measured one updates its shards

    with transaction_touches() as touched:
        _transfer(first, cash, other, "measured")

    one_merchants(touched, first)
    assert {"books_journalentry", "books_posting", "books_accountshard"}.issubset(
        touched.merchants_written
    )
    assert "books_account" not in touched.tables_written  # no row of the bank's accounts


def test_a_repayment_to_a_merchants_receivable_writes_one_merchants_rows(
    merchant: Merchant, now: datetime
) -> None:
    chart = Chart(merchant, "EUR")
    legs = [Leg(chart.bank_cash(), 1_234), Leg(chart.advances_receivable(), -1_234)]

    with transaction_touches() as touched:
        journal_post(key="repaid:1", memo="repaid", legs=legs, now=now)

    one_merchants(touched, merchant)
    assert touched.merchants_written["books_account"] == {merchant.pk}  # its receivable's row


def test_settling_a_payout_writes_one_merchants_rows(
    trade: Trade,
    facility: Facility,
    officer: User,
    now: datetime,
    trade_for: Callable[[Merchant], Trade],
    make_merchant: Callable[..., Merchant],
    open_facility: Callable[..., Facility],
) -> None:
    """Two merchants with advances and payouts; the worker settles one's payout, then the
    other's is measured. (The first ever settlement in a currency opens the bank's accounts in
    it: reference data, written once; the measured one is the steady state.)"""
    from financing.models import SettlementWork
    from financing.services.settlement import settlement_work_run

    rival = trade_for(make_merchant())
    rival.merchant.kyc_status = Merchant.KycStatus.VERIFIED
    rival.merchant.save(update_fields=["kyc_status"])
    open_facility(rival.merchant)
    for each in (rival, trade):
        refs = each.fundable(2)
        disbursed(each, refs, officer, now)
        payout(each, [(refs[0], "1000.00"), (refs[1], "400.00")])
    waiting = SettlementWork.objects.filter(status=SettlementWork.Status.PENDING)
    assert settlement_work_run(work_id=waiting.get(merchant=rival.merchant).pk, now=now)
    work = waiting.get(merchant=trade.merchant)

    with transaction_touches() as touched:
        assert settlement_work_run(work_id=work.pk, now=now)

    one_merchants(touched, trade.merchant)
    assert {
        "books_journalentry",
        "books_accountshard",
        "financing_assignment",
        "financing_lineallocation",
        "ledger_entry",
    }.issubset(touched.merchants_written)


# --- Negative controls: the check goes red -------------------------------------------------------


def test_appending_to_two_merchants_chains_in_one_transaction_is_caught(
    make_merchant: Callable[..., Merchant], now: datetime
) -> None:
    first, second = make_merchant(), make_merchant()
    batch = [
        NewEntry(m.pk, event_parse(_raw("order.placed", "ORD-1", _order(), now)))
        for m in (first, second)
    ]

    with transaction_touches() as touched:
        entries_append(source="chainfin", entries=batch, now=now)

    assert touched.merchants() == {first.pk, second.pk}
    [problem] = touched.problems()
    assert f"touched rows of merchants [{first.pk}, {second.pk}]" in problem
    assert f"wrote ledger_entry: [{first.pk}, {second.pk}]" in problem


def test_posting_for_two_merchants_in_one_transaction_is_caught(
    make_merchant: Callable[..., Merchant], now: datetime
) -> None:
    first, second = make_merchant(), make_merchant()

    with transaction_touches() as touched:
        for n, merchant in enumerate((first, second)):
            chart = Chart(merchant, "EUR")
            legs = [Leg(chart.disbursement_clearing(), -n - 1), Leg(chart.suspense(), n + 1)]
            journal_post(key=f"two:{n}", memo="m", legs=legs, now=now)

    assert touched.merchants_written["books_accountshard"] == {first.pk, second.pk}
    assert touched.problems()


def test_writing_a_reference_table_or_locking_the_banks_account_is_caught(
    merchant: Merchant, now: datetime
) -> None:
    """What journal_post did before the books were sharded: lock the bank's account row."""
    cash = account_open(code="bank_cash:EUR", name="Bank cash", kind="asset", currency="EUR")

    with transaction_touches() as touched:
        Merchant.objects.filter(pk=merchant.pk).update(legal_name="Renamed GmbH")
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM books_account WHERE id = %s FOR UPDATE", [cash.pk])

    problems = touched.problems()
    assert "wrote merchants_merchant, which is not distributed by merchant" in problems[0]
    if touched.locks_seen:
        assert touched.merchants_locked == {"books_account": {None}}
        assert "locked books_account: [None]" in problems[1]


def _transfer(merchant: Merchant, debit: object, credit: object, ref: str) -> None:
    now = timezone.now()
    event = repayment_event(ref, now, "12.34")
    entry_append(source="chainfin", merchant_id=merchant.pk, event=event, now=now)
    journal_post(
        key=f"advance.repaid:{merchant.pk}:{ref}",
        memo="transfer",
        legs=[Leg(debit, 1_234), Leg(credit, -1_234)],  # type: ignore[arg-type]
        now=now,
        merchant_id=merchant.pk,
    )


def _raw(type_: str, ref: str, data: dict[str, object], now: datetime) -> dict[str, object]:
    return {"type": type_, "ref": ref, "occurred_at": format_timestamp(now), "data": data}


def _order() -> dict[str, object]:
    return {"currency": "EUR", "amount": "10.00"}


def _invoice_data(order_ref: str) -> dict[str, object]:
    return {
        "currency": "EUR",
        "amount": "500.00",
        "order_ref": order_ref,
        "issue_date": "2026-10-20",
        "due_date": "2026-12-15",
        "debtor": {"kind": "marketplace", "name": "Acme Marketplace"},
    }
