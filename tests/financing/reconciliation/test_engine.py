"""The matching engine on real rows: payouts built through the ledger and settlement, payments
written by disbursement and release, statements as the camt import writes them."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.books.models import JournalEntry
from financing.exceptions import NotPermitted, WrongState
from financing.models import (
    Break,
    Facility,
    Match,
    MatchItem,
    MatchRule,
    Payment,
    StatementEntry,
)
from financing.reconciliation.decisions import match_confirm, match_reject
from financing.reconciliation.engine import statement_match
from financing.services.payment_files import payment_batch_create
from ledger.models import Payout
from tests.financing.conftest import Trade
from tests.financing.reconciliation.helpers import account_active
from tests.financing.reconciliation.statements import (
    Line,
    batch_debit_of,
    debits_of,
    statement,
)
from tests.financing.settlement_helpers import (
    balance,
    books_and_chain_sound,
    disbursed,
    payout,
    settle_pending,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

VALUE_ON = date(2026, 11, 2)


def financed_payout(trade: Trade, officer: User, now: datetime, n: int, each: str) -> Payout:
    """A payout of ``n`` financed receivables, settled: collections clearing holds its total."""
    refs = trade.fundable(n, amount=each)
    for start in range(0, n, 100):  # at most 100 receivables go into one advance
        disbursed(trade, refs[start : start + 100], officer, now)
    ref = payout(trade, [(r, each) for r in refs])
    settle_pending(now)
    return Payout.objects.get(ref=ref)


def test_one_credit_for_a_payout_of_250_receivables_matches_one_to_many_and_clears(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    paid = financed_payout(trade, officer, now, 250, "10.00")
    assert paid.amount_minor == 250_000 and len(paid.lines) == 250
    assert balance("collections_clearing") == 250_000
    job = statement([Line("credit", 250_000, VALUE_ON, references=[f"Payout {paid.ref}"])], now)

    run = statement_match(job_id=job.pk, now=now)

    assert (run.confirmed, run.suggested, run.ambiguous, run.unmatched) == (1, 0, 0, 0)
    [match] = Match.objects.all()
    assert match.rule.kind == MatchRule.Kind.ONE_TO_MANY
    assert match.rule.name == "Credit by payout reference"
    assert (match.status, match.adjustment_minor, match.confirmed_by) == ("confirmed", 0, None)
    assert list(match.items.exclude(payout=None).values_list("payout", flat=True)) == [paid.pk]
    assert StatementEntry.objects.get().match_status == "matched"
    assert balance("collections_clearing") == 0 and balance("bank_cash") == 250_000
    assert JournalEntry.objects.filter(key=f"match:{match.pk}").count() == 1
    books_and_chain_sound()


def test_a_credit_30_cents_short_is_suggested_and_posts_only_when_an_officer_confirms(
    trade: Trade, facility: Facility, officer: User, auditor: User, now: datetime
) -> None:
    paid = financed_payout(trade, officer, now, 2, "500.00")
    statement([Line("credit", 99_970, VALUE_ON, references=[paid.ref])], now)

    run = statement_match(now=now)

    assert (run.confirmed, run.suggested) == (0, 1)
    [match] = Match.objects.all()
    assert (match.status, match.adjustment_minor, match.rule.name) == (
        "suggested",
        -30,
        "Credit by payout reference, fee deducted",
    )
    assert StatementEntry.objects.get().match_status == "suggested"
    assert not JournalEntry.objects.filter(key=f"match:{match.pk}").exists()
    assert balance("bank_cash") == 0
    with pytest.raises(NotPermitted):
        match_confirm(match=match, officer=auditor, now=now)

    match_confirm(match=match, officer=officer, now=now)

    match.refresh_from_db()
    assert (match.status, match.confirmed_by) == ("confirmed", officer)
    assert balance("bank_cash") == 99_970
    assert balance("reconciliation_differences") == 30  # the bank's fee, written off
    assert balance("collections_clearing") == 0
    with pytest.raises(WrongState):
        match_confirm(match=match, officer=officer, now=now)
    assert JournalEntry.objects.filter(key=f"match:{match.pk}").count() == 1
    books_and_chain_sound()


def test_two_equal_payouts_on_one_day_are_ambiguous_and_left_to_an_officer(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    first = financed_payout(trade, officer, now, 1, "300.00")
    second = financed_payout(trade, officer, now, 1, "300.00")
    assert first.settled_on == second.settled_on
    statement([Line("credit", 30_000, VALUE_ON, references=["SEPA transfer"])], now)

    run = statement_match(now=now)

    assert (run.confirmed, run.suggested, run.ambiguous) == (0, 0, 1)
    assert not Match.objects.exists()
    [brk] = Break.objects.filter(kind=Break.Kind.AMBIGUOUS_MATCH)
    assert brk.detail["options"] == [[first.pk], [second.pk]]
    assert brk.detail["rule_name"] == "Credit by amount and date"
    assert balance("bank_cash") == 0
    # Run again: the same one break, still nothing matched.
    statement_match(now=now)
    assert Break.objects.filter(kind=Break.Kind.AMBIGUOUS_MATCH).count() == 1
    assert not Match.objects.exists()


def test_round_trip_every_payment_out_on_a_camt054_matches_and_books(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    refs = trade.fundable(3, amount="1000.00")
    for ref in refs[:2]:
        disbursed(trade, [ref], officer, now)
    disbursed(trade, [refs[2]], officer, now)
    # A release too: the third receivable paid in full releases its reserve.
    payout(trade, [(refs[2], "1000.00")])
    settle_pending(now)
    payments = list(Payment.objects.order_by("pk"))
    assert len(payments) == 4
    sent = -balance("disbursement_clearing")
    assert sent == sum(p.amount_minor for p in payments)
    credit = Line("credit", 100_000, VALUE_ON, references=[Payout.objects.get().ref])
    statement(
        [*debits_of(payments[:2], VALUE_ON), batch_debit_of(payments[2:], VALUE_ON), credit], now
    )

    run = statement_match(now=now)

    assert (run.confirmed, run.suggested, run.ambiguous, run.unmatched) == (4, 0, 0, 0)
    assert set(Payment.objects.values_list("status", flat=True)) == {"booked"}
    assert not StatementEntry.objects.exclude(match_status="matched").exists()
    batch = Match.objects.get(rule__name="Batch debit by end-to-end ids")
    assert batch.items.exclude(payment=None).count() == 2
    assert balance("disbursement_clearing") == 0
    assert balance("collections_clearing") == 0
    assert balance("bank_cash") == 100_000 - sent
    books_and_chain_sound()


def test_a_second_run_posts_nothing_again(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    paid = financed_payout(trade, officer, now, 1, "100.00")
    statement([Line("credit", 10_000, VALUE_ON, references=[paid.ref])], now)
    statement_match(now=now)
    entries = JournalEntry.objects.count()

    again = statement_match(now=now)

    assert (again.confirmed, again.suggested, again.unmatched) == (0, 0, 0)
    assert Match.objects.count() == 1 and JournalEntry.objects.count() == entries


def test_unmatched_entries_and_missing_payments_become_breaks(
    trade: Trade, facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    payment = Payment.objects.get()
    # Sent in a payment file (accepted by the bank), and a week on no statement shows it.
    account_active(trade.merchant, officer, senior, now)
    payment_batch_create(currency="EUR", scheme="pain.001.001.09", officer=officer, now=now)
    later = now + timedelta(days=7)
    statement([Line("debit", 1_250, VALUE_ON, references=["Account fee November"])], now)

    run = statement_match(now=later)

    assert (run.unmatched, run.not_on_statement) == (1, 1)
    fee = Break.objects.get(kind=Break.Kind.UNMATCHED_STATEMENT_ENTRY)
    assert (fee.amount_minor, fee.currency) == (-1_250, "EUR")
    missing = Break.objects.get(kind=Break.Kind.PAYMENT_NOT_ON_STATEMENT)
    assert (missing.key, missing.expected_minor, missing.merchant_id) == (
        f"payment:{payment.pk}",
        payment.amount_minor,
        trade.merchant.pk,
    )
    # Within the allowed days, a sent payment is no break yet.
    Break.objects.all().delete()
    assert statement_match(now=now).not_on_statement == 0


def test_a_rejected_suggestion_frees_its_items_and_opens_a_break(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    paid = financed_payout(trade, officer, now, 1, "100.00")
    statement([Line("credit", 9_990, VALUE_ON, references=[paid.ref])], now)
    statement_match(now=now)
    match = Match.objects.get()
    with pytest.raises(WrongState):
        match_reject(match=match, officer=officer, note=" ", now=now)

    match_reject(match=match, officer=officer, note="Another marketplace's money", now=now)

    assert not MatchItem.objects.filter(live=True).exists()
    assert Break.objects.filter(kind=Break.Kind.UNMATCHED_STATEMENT_ENTRY).count() == 1
    statement_match(now=now)  # the engine does not suggest the rejected match again
    assert Match.objects.count() == 1


def test_the_database_keeps_an_item_in_one_live_match(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    paid = financed_payout(trade, officer, now, 1, "100.00")
    statement([Line("credit", 10_000, VALUE_ON, references=[paid.ref])], now)
    statement_match(now=now)
    match = Match.objects.get()
    rival = Match.objects.create(
        rule=match.rule,
        source=match.source,
        status="suggested",
        currency="EUR",
        amount_minor=10_000,
        expected_minor=10_000,
        found_at=now,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        MatchItem.objects.create(match=rival, payout=paid, amount_minor=10_000)
    # negative control: a payout in no live match joins one
    MatchItem.objects.create(match=rival, payout=paid, amount_minor=10_000, live=False)


def test_the_database_refuses_an_adjustment_confirmed_by_no_officer(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    rule = MatchRule.objects.get(order=60)
    fields = {
        "rule": rule,
        "source": rule.source,
        "currency": "EUR",
        "amount_minor": 9_970,
        "expected_minor": 10_000,
        "adjustment_minor": -30,
        "found_at": now,
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        Match.objects.create(status="confirmed", confirmed_at=now, **fields)
    Match.objects.create(status="confirmed", confirmed_at=now, confirmed_by=officer, **fields)


def test_rules_are_seeded_in_their_documented_order(db: None) -> None:
    names = list(MatchRule.objects.order_by("order").values_list("order", "name"))
    assert names[0] == (10, "Debit by end-to-end id")
    assert [o for o, _ in names] == sorted(o for o, _ in names) and len(names) == 8
