"""Money held in suspense, allocated by hand, four-eyes, exactly once (issue 9, item 1).

Each invoice has a face of 1,000.00; the facility advances 80 % (800.00, reserve 200.00).
Money is in cents. Every allocation ends with ``verify_books`` and ``verify_ledger``.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import IntegrityError

from financing.books.models import JournalEntry
from financing.eligibility import Code, verdicts
from financing.exceptions import MakerCheckerViolation, NotPermitted, WrongState
from financing.models import (
    Advance,
    Assignment,
    Facility,
    LineAllocation,
    RiskChange,
    SuspenseItem,
)
from financing.services.proposals import change_confirm, change_reject
from financing.services.suspense import suspense_allocate_apply, suspense_allocate_propose
from ledger.models import Entry, Invoice
from tests.financing.conftest import TODAY, Trade
from tests.financing.settlement_helpers import (
    assignment,
    balance,
    books_and_chain_sound,
    disbursed,
    payout,
    settle_pending,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

FACE, PRINCIPAL, RESERVE = 100_000, 80_000, 20_000


def held(trade: Trade, amount: str, now: datetime) -> SuspenseItem:
    """A payout of ``amount`` without lines, settled: all of it held in suspense."""
    payout(trade, [], amount=amount)
    settle_pending(now)
    return SuspenseItem.objects.get(status=SuspenseItem.Status.OPEN)


def allocated(
    item: SuspenseItem, target: str, proposer: User, confirmer: User, now: datetime
) -> RiskChange:
    change = suspense_allocate_propose(
        item=item, officer=proposer, target=target, reason="Remittance advice", now=now
    )
    return change_confirm(change=change, officer=confirmer, now=now)


def system_entries(trade: Trade, since_seq: int) -> list[tuple[str, dict[str, object]]]:
    rows = Entry.objects.filter(chain_id=trade.merchant.pk, seq__gt=since_seq).order_by("seq")
    return [(e.type, json.loads(bytes(e.body))["data"]) for e in rows]


def head(trade: Trade) -> int:
    return (
        Entry.objects.filter(chain_id=trade.merchant.pk)
        .order_by("-seq")
        .values_list("seq", flat=True)[0]
    )


def test_money_in_suspense_repays_a_financed_invoice_through_the_waterfall(
    trade: Trade, facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    advance = disbursed(trade, [ref], officer, now)
    payout(trade, [("TYPO-" + ref, "1000.00")])  # the marketplace misspelt the invoice
    settle_pending(now)
    item = SuspenseItem.objects.get()
    mer = trade.merchant.public_id
    assert balance("suspense", mer) == -FACE
    seq = head(trade)

    allocated(item, ref, officer, senior, now)

    item.refresh_from_db()
    assert (item.status, item.allocated_to, item.allocated_at) == ("allocated", ref, now)
    closed = assignment(ref)
    assert (closed.status, closed.paid_minor, closed.principal_repaid_minor) == (
        Assignment.Status.SETTLED,
        FACE,
        PRINCIPAL,
    )
    advance.refresh_from_db()
    assert advance.status == Advance.Status.REPAID
    assert Facility.objects.get(pk=facility.pk).committed_minor == 0  # the line revolves
    line = LineAllocation.objects.get(target=LineAllocation.Target.FINANCED)
    assert (line.line, line.to_principal_minor, line.to_merchant_minor) == (0, PRINCIPAL, RESERVE)
    assert line.payout_entry.type == "suspense.allocated"
    assert line.assignment_id == closed.pk
    # Books: out of suspense, into the receivable; the reserve goes to the merchant.
    assert balance("suspense", mer) == 0
    assert balance("advances_receivable", mer) == 0
    assert balance("merchant_reserve_payable", mer) == 0
    [journal] = JournalEntry.objects.filter(key=f"suspense:{item.ref}")
    assert "suspense.allocated" in journal.memo
    # Chain: the allocation, then what it settled, naming both officers.
    entries = system_entries(trade, seq)
    assert [t for t, _ in entries] == [
        "suspense.allocated",
        "receivable.settled",
        "advance.repaid",
    ]
    allocation = entries[0][1]
    assert allocation["suspense_ref"] == item.ref and allocation["invoice_ref"] == ref
    assert (allocation["proposed_by"], allocation["confirmed_by"]) == (
        officer.get_username(),
        senior.get_username(),
    )
    assert allocation["amount"] == "1000.00"
    assert entries[1][1]["invoice_ref"] == ref and entries[1][1]["outstanding"] == "0.00"
    books_and_chain_sound()


def test_a_pass_through_to_the_merchant_nets_the_recourse_it_owes(
    trade: Trade, facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    advance = disbursed(trade, [ref], officer, now)
    trade.credited(ref, "100.00")  # 100.00 of recourse after funding
    settle_pending(now)
    mer = trade.merchant.public_id
    assert balance("recourse_receivable", mer) == 10_000
    item = held(trade, "300.00", now)
    paid_out_before = balance("disbursement_clearing")
    seq = head(trade)

    allocated(item, "merchant", officer, senior, now)

    line = LineAllocation.objects.get(payout_entry__type="suspense.allocated")
    assert (line.target, line.invoice_ref, line.assignment_id) == ("merchant", "", None)
    assert (line.to_merchant_minor, line.recourse_netted_minor) == (30_000, 10_000)
    assert balance("recourse_receivable", mer) == 0
    assert balance("suspense", mer) == 0
    assert balance("disbursement_clearing") - paid_out_before == -20_000  # 300.00 - 100.00
    assert SuspenseItem.objects.get(pk=item.pk).allocated_to == "merchant"
    # Nothing of the receivable moved: the advance is still outstanding.
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.DISBURSED
    entries = system_entries(trade, seq)
    assert [t for t, _ in entries] == ["suspense.allocated"]
    assert "invoice_ref" not in entries[0][1]
    books_and_chain_sound()


def test_an_unfinanced_invoice_paid_from_suspense_is_never_fundable_again(
    trade: Trade,
    facility: Facility,
    officer: User,
    senior: User,
    now: datetime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    financed, unfinanced = trade.fundable(2)
    disbursed(trade, [financed], officer, now)  # payouts now come to the bank
    item = held(trade, "1000.00", now)

    allocated(item, unfinanced, officer, senior, now)

    line = LineAllocation.objects.get(payout_entry__type="suspense.allocated")
    assert (line.target, line.invoice_ref, line.to_merchant_minor) == (
        "merchant",
        unfinanced,
        FACE,
    )
    assert Invoice.objects.get(merchant=trade.merchant, ref=unfinanced).paid_minor == FACE
    [verdict] = verdicts(trade.merchant, TODAY, [unfinanced])
    assert Code.PAID in {r.code for r in verdict.reasons}
    books_and_chain_sound()
    # The chain entry is what paid it: replaying the chain gives the same invoice.
    call_command("rebuild_projections", "--dry-run")
    assert "0 row(s) would change" in capsys.readouterr().out


def test_an_allocation_beyond_what_is_owed_leaves_the_rest_in_suspense(
    trade: Trade, facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    payout(trade, [(ref, "600.00")])
    item = held(trade, "500.00", now)

    allocated(item, ref, officer, senior, now)

    assert assignment(ref).status == Assignment.Status.SETTLED
    rest = SuspenseItem.objects.get(status=SuspenseItem.Status.OPEN)
    assert (rest.amount_minor, rest.invoice_ref) == (10_000, ref)
    assert balance("suspense", trade.merchant.public_id) == -10_000
    books_and_chain_sound()


def test_four_eyes_the_proposer_never_confirms_and_an_auditor_never_proposes(
    trade: Trade,
    facility: Facility,
    officer: User,
    senior: User,
    senior_two: User,
    auditor: User,
    now: datetime,
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    item = held(trade, "50.00", now)

    with pytest.raises(NotPermitted):
        suspense_allocate_propose(
            item=item, officer=auditor, target="merchant", reason="Looks right", now=now
        )
    change = suspense_allocate_propose(
        item=item, officer=senior, target="merchant", reason="Remittance advice", now=now
    )
    with pytest.raises(MakerCheckerViolation):
        change_confirm(change=change, officer=senior, now=now)
    with pytest.raises(NotPermitted):
        change_confirm(change=change, officer=officer, now=now)  # not a senior officer
    assert SuspenseItem.objects.get(pk=item.pk).status == SuspenseItem.Status.OPEN
    assert not LineAllocation.objects.filter(payout_entry__type="suspense.allocated").exists()

    change_confirm(change=change, officer=senior_two, now=now)
    assert SuspenseItem.objects.get(pk=item.pk).status == SuspenseItem.Status.ALLOCATED


def test_proposals_name_a_real_target_and_a_reason_one_at_a_time(
    trade: Trade, facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    item = held(trade, "50.00", now)

    def propose(target: str, reason: str = "Remittance advice") -> RiskChange:
        return suspense_allocate_propose(
            item=item, officer=officer, target=target, reason=reason, now=now
        )

    with pytest.raises(WrongState, match="not one of"):
        propose("NO-SUCH-INVOICE")
    with pytest.raises(WrongState, match="Name an invoice"):
        propose("  ")
    with pytest.raises(WrongState, match="Say why"):
        propose("merchant", reason=" ")
    first = propose(ref)
    with pytest.raises(WrongState, match="already proposed"):
        propose("merchant")
    change_reject(change=first, officer=senior, now=now, note="Wrong invoice")
    change_confirm(change=propose("merchant"), officer=senior, now=now)
    with pytest.raises(WrongState, match="allocated already"):
        propose(ref)


def test_an_allocation_applies_exactly_once(
    trade: Trade, facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    item = held(trade, "400.00", now)
    change = allocated(item, ref, officer, senior, now)
    paid = assignment(ref).paid_minor
    assert paid == 40_000

    with pytest.raises(WrongState):  # confirmed already
        change_confirm(change=change, officer=senior, now=now)
    with pytest.raises(WrongState, match="allocated already"):  # the claim refuses
        suspense_allocate_apply(change=change, now=now)
    # With the claim undone by hand, the line's unique key is the guard of last resort.
    SuspenseItem.objects.filter(pk=item.pk).update(status="open", allocated_at=None)
    with pytest.raises(IntegrityError, match="lineallocation_once_per_line"):
        suspense_allocate_apply(change=change, now=now)
    assert assignment(ref).paid_minor == paid
    assert JournalEntry.objects.filter(key=f"suspense:{item.ref}").count() == 1
