"""Settlement of payouts through the waterfall, worked by hand (issue 9).

Each invoice has a face of 1,000.00; the facility advances 80 % (800.00, reserve 200.00) at
18 % a year. Money is in cents. Every test ends with ``verify_books`` and ``verify_ledger``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError

from financing.eligibility import Code, verdicts
from financing.models import (
    Advance,
    Assignment,
    Facility,
    LineAllocation,
    Recourse,
    SettlementWork,
    SuspenseItem,
)
from financing.services.overdue import overdue_sweep
from financing.services.settlement import settlement_work_run
from ledger.models import Entry
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


def types_of(trade: Trade) -> list[str]:
    return list(
        Entry.objects.filter(chain_id=trade.merchant.pk, source="chainfin")
        .order_by("seq")
        .values_list("type", flat=True)
    )


def test_full_payment_repays_the_advance_releases_the_reserve_and_the_line_revolves(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    advance = disbursed(trade, [ref], officer, now)
    assert Facility.objects.get(pk=facility.pk).committed_minor == PRINCIPAL
    payout(trade, [(ref, "1000.00")])

    assert settle_pending(now) == 1

    settled = assignment(ref)
    assert (settled.status, settled.paid_minor, settled.principal_repaid_minor) == (
        Assignment.Status.SETTLED,
        FACE,
        PRINCIPAL,
    )
    [line] = LineAllocation.objects.all()
    assert (line.to_late_fees_minor, line.to_principal_minor, line.to_merchant_minor) == (
        0,
        PRINCIPAL,
        RESERVE,
    )
    advance.refresh_from_db()
    assert advance.status == Advance.Status.REPAID
    assert advance.fee_recognised_minor == advance.fee_minor  # all earned once repaid
    assert Facility.objects.get(pk=facility.pk).committed_minor == 0  # room back at once
    mer = trade.merchant.public_id
    assert balance("advances_receivable", mer) == 0
    assert balance("merchant_reserve_payable", mer) == 0
    assert balance("collections_clearing") == FACE
    # Out to the merchant: the advance less the fee, then the reserve.
    assert balance("disbursement_clearing") == -(PRINCIPAL - advance.fee_minor + RESERVE)
    assert balance("fee_income") == -advance.fee_minor
    assert balance("unearned_discount") == 0
    assert types_of(trade)[-2:] == ["receivable.settled", "advance.repaid"]
    books_and_chain_sound()


def test_partial_payments_leave_the_rest_outstanding_until_the_last_one(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    advance = disbursed(trade, [ref], officer, now)
    payout(trade, [(ref, "500.00")])
    settle_pending(now)

    part = assignment(ref)
    assert (part.status, part.principal_repaid_minor, part.paid_minor) == (
        Assignment.Status.ASSIGNED,
        50_000,
        50_000,
    )
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.DISBURSED
    assert Facility.objects.get(pk=facility.pk).committed_minor == PRINCIPAL

    payout(trade, [(ref, "500.00")])
    settle_pending(now)
    second = LineAllocation.objects.order_by("pk").last()
    assert second is not None
    assert (second.to_principal_minor, second.to_merchant_minor) == (30_000, RESERVE)
    assert assignment(ref).status == Assignment.Status.SETTLED
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.REPAID
    books_and_chain_sound()


def test_an_overpayment_goes_to_suspense_for_officers(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    payout(trade, [(ref, "1100.00")])
    settle_pending(now)

    [line] = LineAllocation.objects.all()
    assert (line.to_principal_minor, line.to_merchant_minor, line.to_suspense_minor) == (
        PRINCIPAL,
        RESERVE,
        10_000,
    )
    [held] = SuspenseItem.objects.all()
    assert (held.amount_minor, held.invoice_ref, held.status) == (10_000, ref, "open")
    assert "Overpayment" in held.reason
    assert balance("suspense", trade.merchant.public_id) == -10_000
    books_and_chain_sound()


def test_a_credit_note_after_funding_raises_recourse_netted_from_the_release(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    advance = disbursed(trade, [ref], officer, now)
    trade.credited(ref, "100.00")
    assert settle_pending(now) == 1  # the dilution

    [recourse] = Recourse.objects.all()
    assert (recourse.amount_minor, recourse.reason) == (10_000, Recourse.Reason.CREDIT_NOTE)
    mer = trade.merchant.public_id
    assert balance("recourse_receivable", mer) == 10_000
    assert assignment(ref).diluted_minor == 10_000

    payout(trade, [(ref, "900.00")])  # the debtor pays what the credit note left
    settle_pending(now)

    [line] = LineAllocation.objects.all()
    # 800.00 principal, 100.00 to the merchant, all of it kept back against the recourse.
    assert (line.to_principal_minor, line.to_merchant_minor, line.recourse_netted_minor) == (
        PRINCIPAL,
        10_000,
        10_000,
    )
    assert balance("recourse_receivable", mer) == 0
    # Closing releases the 100.00 of reserve left, in cash now that nothing is owed.
    assert balance("disbursement_clearing") == -(PRINCIPAL - advance.fee_minor + 10_000)
    assert balance("merchant_reserve_payable", mer) == 0
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.REPAID
    assert "recourse.raised" in types_of(trade)
    assert "reserve.released" in types_of(trade)
    books_and_chain_sound()


def test_an_overdue_advance_pays_its_late_fees_first(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1, due_in_days=10)
    advance = disbursed(trade, [ref], officer, now)
    overdue_sweep(now=now + timedelta(days=20))  # ten days past due
    late = assignment(ref).late_fee_minor
    assert late > 0

    payout(trade, [(ref, "1000.00")])
    settle_pending(now + timedelta(days=20))

    [line] = LineAllocation.objects.all()
    assert (line.to_late_fees_minor, line.to_principal_minor, line.to_merchant_minor) == (
        late,
        PRINCIPAL,
        RESERVE - late,
    )
    mer = trade.merchant.public_id
    assert balance("advances_receivable", mer) == 0
    assert balance("merchant_reserve_payable", mer) == 0
    assert balance("late_fee_income") == -late
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.REPAID
    books_and_chain_sound()


def test_one_payout_covers_receivables_of_two_advances(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    first, second = trade.fundable(2)
    one = disbursed(trade, [first], officer, now)
    two = disbursed(trade, [second], officer, now)
    payout(trade, [(first, "1000.00"), (second, "1000.00")])

    assert settle_pending(now) == 1

    assert set(Advance.objects.values_list("status", flat=True)) == {Advance.Status.REPAID}
    assert {one.pk, two.pk} == set(Advance.objects.values_list("pk", flat=True))
    assert Facility.objects.get(pk=facility.pk).committed_minor == 0
    assert types_of(trade).count("advance.repaid") == 2
    books_and_chain_sound()


def test_recourse_from_a_return_is_netted_from_another_receivables_release(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    returned, paid = trade.fundable(2)
    disbursed(trade, [returned], officer, now)
    disbursed(trade, [paid], officer, now)
    order_ref = assignment(returned).invoice_ref.replace("INV", "ORD")
    trade.returned(order_ref)
    settle_pending(now)

    mer = trade.merchant.public_id
    # The debtor owes nothing on goods sent back: the whole face becomes recourse, and the
    # receivable's own reserve (200.00) is kept back against it at once.
    assert assignment(returned).status == Assignment.Status.SETTLED
    assert balance("recourse_receivable", mer) == FACE - RESERVE

    payout(trade, [(paid, "1000.00")])
    settle_pending(now)

    [line] = LineAllocation.objects.all()
    assert (line.to_merchant_minor, line.recourse_netted_minor) == (RESERVE, RESERVE)
    assert balance("recourse_receivable", mer) == FACE - 2 * RESERVE
    books_and_chain_sound()


def test_a_paid_unfinanced_invoice_passes_to_the_merchant_and_is_never_fundable_again(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    financed, unfinanced = trade.fundable(2)
    disbursed(trade, [financed], officer, now)  # payouts now come to the bank
    payout(trade, [(unfinanced, "1000.00")])
    settle_pending(now)

    [line] = LineAllocation.objects.all()
    assert (line.target, line.to_merchant_minor) == (LineAllocation.Target.MERCHANT, FACE)
    [verdict] = verdicts(trade.merchant, TODAY, [unfinanced])
    assert Code.PAID in {r.code for r in verdict.reasons}
    books_and_chain_sound()


def test_lines_naming_no_known_invoice_and_payouts_without_lines_go_to_suspense(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    payout(trade, [("NO-SUCH-INVOICE", "50.00")], amount="80.00")
    payout(trade, [], amount="30.00")
    settle_pending(now)

    held = sorted(SuspenseItem.objects.values_list("amount_minor", "invoice_ref"))
    assert held == [(3_000, ""), (3_000, ""), (5_000, "NO-SUCH-INVOICE")]
    assert balance("suspense", trade.merchant.public_id) == -11_000
    books_and_chain_sound()


def test_the_same_work_run_twice_has_one_effect(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    payout(trade, [(ref, "400.00")])
    [work] = SettlementWork.objects.all()

    assert settlement_work_run(work_id=work.pk, now=now) is True
    assert settlement_work_run(work_id=work.pk, now=now) is False
    SettlementWork.objects.filter(pk=work.pk).update(status="pending", done_at=None)
    # With the claim undone by hand, the unique key is the guard of last resort.
    with pytest.raises(IntegrityError, match="lineallocation_once_per_line"):
        settlement_work_run(work_id=work.pk, now=now)
    assert assignment(ref).paid_minor == 40_000
    assert LineAllocation.objects.count() == 1


def test_the_overdue_sweep_never_flags_a_receivable_paid_on_time(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [ref] = trade.fundable(1, due_in_days=10)
    advance = disbursed(trade, [ref], officer, now)
    payout(trade, [(ref, "1000.00")])
    settle_pending(now + timedelta(days=5))  # paid before its due date

    assert overdue_sweep(now=now + timedelta(days=60)) == 0
    advance.refresh_from_db()
    assert (advance.status, advance.late_fee_minor) == (Advance.Status.REPAID, 0)
    assert not trade.merchant.blacklistings.exists()


def test_an_overdue_advance_is_back_to_disbursed_once_its_past_due_receivables_are_paid(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    [early] = trade.fundable(1, due_in_days=10)
    [late] = trade.fundable(1, due_in_days=45)
    advance = disbursed(trade, [early, late], officer, now)
    overdue_sweep(now=now + timedelta(days=20))
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.OVERDUE

    payout(trade, [(early, "1000.00")])
    settle_pending(now + timedelta(days=20))

    assert assignment(early).status == Assignment.Status.SETTLED
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.DISBURSED
    books_and_chain_sound()
