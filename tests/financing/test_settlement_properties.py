"""Properties of settlement (issue 9): whatever the payouts, credit notes and returns, the money
adds up, no balance turns the wrong way, the books and chains verify, and the same history
replayed gives the same books.

The waterfall's arithmetic is checked on its own first, without a database. Then each example
builds a small merchant (two to four financed receivables in one or two advances, and one
invoice nobody financed), writes a drawn history through the ledger as a marketplace would and
settles it as a worker would, checking the balances after every step; then it rolls back to a
savepoint taken before the history and replays it. Each example runs in a savepoint that is
rolled back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from financing import settlement_books
from financing.books.selectors import accounts_with_balance
from financing.models import Assignment, Facility, LineAllocation, Recourse, SuspenseItem
from financing.waterfall import (
    ReceivableBalance,
    dilution_take,
    payment_split,
    receivable_close,
)
from ledger.models import Payout
from tests.financing.conftest import Trade
from tests.financing.settlement_helpers import books_and_chain_sound, disbursed, settle_pending

FACE = 100_000  # every receivable: 1,000.00, advanced at 80 %

# --- the waterfall alone ---------------------------------------------------------------------


@st.composite
def fresh_balances(draw: Any) -> ReceivableBalance:
    face = draw(st.integers(1, 10**9))
    return ReceivableBalance(
        face_minor=face,
        advance_minor=draw(st.integers(1, face)),
        late_fee_minor=draw(st.integers(0, face)),
    )


# A step: ("pay", amount) or ("dilute", amount).
STEPS = st.lists(
    st.tuples(st.sampled_from(["pay", "dilute"]), st.integers(1, 2 * 10**9)), max_size=8
)


def _within_bounds(balance: ReceivableBalance) -> None:
    """What the database's assignment_settlement_within_face constraint holds an assignment to."""
    assert balance.diluted_minor >= 0
    assert 0 <= balance.paid_minor <= balance.face_minor - balance.diluted_minor
    assert 0 <= balance.late_fee_paid_minor <= balance.late_fee_minor
    assert 0 <= balance.principal_repaid_minor <= balance.advance_minor
    assert 0 <= balance.reserve_used_minor <= balance.face_minor - balance.advance_minor


@settings(max_examples=300, deadline=None)
@given(balance=fresh_balances(), steps=STEPS)
def test_the_waterfall_splits_every_payment_exactly_and_keeps_every_figure_in_bounds(
    balance: ReceivableBalance, steps: list[tuple[str, int]]
) -> None:
    for kind, amount in steps:
        if balance.closed:
            break
        if kind == "dilute":
            taken, after = dilution_take(balance, amount)
            assert 0 <= taken <= min(amount, balance.owed_by_debtor)
            assert after.owed_by_debtor == balance.owed_by_debtor - taken
        else:
            split = payment_split(balance, amount)
            parts = (split.to_late_fees, split.to_principal, split.to_merchant, split.to_suspense)
            assert sum(parts) == amount
            assert min(parts) >= 0
            assert min(split.late_fees_from_reserve, split.late_fees_to_recourse) >= 0
            assert split.late_fees_from_reserve + split.late_fees_to_recourse == split.to_late_fees
            # Money goes to suspense only when the debtor owes nothing more.
            assert split.to_suspense == 0 or split.after.owed_by_debtor == 0
            after = split.after
        _within_bounds(after)
        balance = after


@settings(max_examples=300, deadline=None)
@given(balance=fresh_balances(), steps=STEPS)
def test_closing_releases_the_reserve_left_and_leaves_no_late_fee_due(
    balance: ReceivableBalance, steps: list[tuple[str, int]]
) -> None:
    for kind, amount in steps:
        if balance.closed:
            break
        balance = (
            dilution_take(balance, amount)[1]
            if kind == "dilute"
            else (payment_split(balance, amount).after)
        )
    if not balance.closed:  # whatever is left is paid in one go
        balance = payment_split(balance, balance.owed_by_debtor).after

    closing = receivable_close(balance)

    assert (closing.after.reserve_left, closing.after.late_fees_due) == (0, 0)
    assert min(closing.reserve_released, closing.late_fees_from_reserve) >= 0
    assert closing.late_fees_to_recourse >= 0
    assert closing.reserve_released + closing.late_fees_from_reserve == balance.reserve_left
    assert closing.late_fees_from_reserve + closing.late_fees_to_recourse == balance.late_fees_due
    _within_bounds(closing.after)


def test_closing_refuses_a_receivable_still_owed() -> None:
    with pytest.raises(ValueError, match="owes nothing more"):
        receivable_close(ReceivableBalance(face_minor=10, advance_minor=8, late_fee_minor=0))


# --- settlement in the database ---------------------------------------------------------------

# A line names a financed receivable (by index), the invoice nobody financed, or no invoice.
LINE_TARGETS = st.one_of(st.integers(0, 3), st.sampled_from(["unfinanced", "unknown"]))
LINE_CENTS = st.one_of(st.integers(1, 30_000), st.sampled_from([FACE, 20_000, 80_000, 120_000]))

PAYOUT = st.fixed_dictionaries(
    {
        "op": st.just("payout"),
        "lines": st.lists(st.tuples(LINE_TARGETS, LINE_CENTS), max_size=4),
        "unnamed": st.sampled_from([0, 0, 0, 500, 10_000]),  # money no line names
    }
).map(lambda payout: payout if payout["lines"] or payout["unnamed"] else payout | {"unnamed": 500})
CREDIT = st.fixed_dictionaries(
    {
        "op": st.just("credit"),
        "receivable": st.integers(0, 3),
        "cents": st.one_of(st.integers(1, FACE), st.just(FACE)),
    }
)
RETURN = st.fixed_dictionaries({"op": st.just("return"), "receivable": st.integers(0, 3)})


@st.composite
def worlds(draw: Any) -> dict[str, Any]:
    """How many receivables are financed (2 to 4), and how many go into the first advance."""
    financed = draw(st.integers(2, 4))
    return {"financed": financed, "first_advance": draw(st.integers(1, financed))}


HISTORIES = st.lists(st.one_of(PAYOUT, PAYOUT, CREDIT, RETURN), min_size=1, max_size=7)


@dataclass
class World:
    trade: Trade
    financed: list[str]  # invoice refs, one per assignment
    unfinanced: str
    credited: dict[str, int]
    returned: set[str]


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _world_build(trade: Trade, officer: User, now: datetime, shape: dict[str, Any]) -> World:
    refs = trade.fundable(shape["financed"] + 1)
    financed, unfinanced = refs[:-1], refs[-1]
    split = shape["first_advance"]
    for group in (financed[:split], financed[split:]):
        if group:
            disbursed(trade, group, officer, now)
    return World(trade, financed, unfinanced, defaultdict(int), set())


def _apply(world: World, step: int, op: dict[str, Any]) -> None:
    """Append one drawn event as the marketplace would; skip what the ledger would refuse."""
    trade = world.trade
    if op["op"] == "payout":
        lines = []
        for target, cents in op["lines"]:
            if target == "unfinanced":
                ref = world.unfinanced
            elif target == "unknown":
                ref = "NO-SUCH-INVOICE"
            else:
                ref = world.financed[target % len(world.financed)]
            lines.append({"invoice_ref": ref, "amount": _money(cents)})
        total = sum(cents for _, cents in op["lines"]) + op["unnamed"]
        data = {
            "currency": "EUR",
            "amount": _money(total),
            "settled_on": date(2026, 11, 1).isoformat(),
            "lines": lines,
        }
        trade.append("payout.settled", f"PO-{step}", data, days_ago=0)
        return
    ref = world.financed[op["receivable"] % len(world.financed)]
    if op["op"] == "credit":
        cents = min(op["cents"], FACE - world.credited[ref])  # credits never exceed the invoice
        if cents <= 0:
            return
        world.credited[ref] += cents
        data = {
            "currency": "EUR",
            "amount": _money(cents),
            "invoice_ref": ref,
            "issue_date": (trade.today - timedelta(days=5)).isoformat(),
        }
        trade.append("invoice.credited", f"CN-{step}", data, days_ago=5)
    elif ref not in world.returned:  # the one delivered shipment comes back once
        world.returned.add(ref)
        trade.returned(ref.replace("INV", "ORD"))


def _balances(world: World) -> dict[str, int]:
    """The merchant's accounts by what they are (code without the merchant's id): debit +."""
    public_id = world.trade.merchant.public_id
    return {
        code.replace(f":{public_id}", ""): balance
        for code, balance in accounts_with_balance().values_list("code", "balance_total_minor")
    }


def _signs_hold(world: World, after: str) -> None:
    """(b) No balance turns the wrong way, and every assignment stays within its face."""
    balances = _balances(world)
    where = f"after {after}"
    assert balances.get("merchant_reserve_payable:EUR", 0) <= 0, f"reserve payable debit {where}"
    assert balances.get("advances_receivable:EUR", 0) >= 0, f"advances receivable credit {where}"
    assert balances.get("suspense:EUR", 0) <= 0, f"suspense debit {where}"
    assert balances.get("recourse_receivable:EUR", 0) >= 0, f"recourse receivable credit {where}"
    for a in Assignment.objects.filter(merchant=world.trade.merchant):
        assert 0 <= a.paid_minor <= a.face_minor - a.diluted_minor, where
        assert 0 <= a.principal_repaid_minor <= a.advance_minor, where
        assert 0 <= a.reserve_used_minor <= a.face_minor - a.advance_minor, where
        assert 0 <= a.late_fee_paid_minor <= a.late_fee_minor, where


def _payouts_add_up(world: World) -> None:
    """(a) Each line's allocation sums to the line; with what no line names, to the payout."""
    for payout in Payout.objects.filter(merchant=world.trade.merchant).select_related("entry"):
        entry = payout.entry
        allocations = list(LineAllocation.objects.filter(payout_entry=entry).order_by("line"))
        for allocation in allocations:
            parts = (
                allocation.to_late_fees_minor,
                allocation.to_principal_minor,
                allocation.to_merchant_minor,
                allocation.to_suspense_minor,
            )
            assert min(parts) >= 0
            assert sum(parts) == allocation.amount_minor, (payout.ref, allocation.line)
            assert 0 <= allocation.recourse_netted_minor <= allocation.to_merchant_minor
        assert [a.line for a in allocations] == list(range(len(payout.lines))), payout.ref
        rest = SuspenseItem.objects.filter(payout_entry=entry, line__isnull=True)
        named = sum(a.amount_minor for a in allocations)
        assert named + sum(i.amount_minor for i in rest) == payout.amount_minor, payout.ref


def _books(world: World) -> tuple[Any, ...]:
    """(d) What a replay must reproduce: balances, every line's split, suspense, recourse."""
    allocations = sorted(
        LineAllocation.objects.filter(merchant=world.trade.merchant).values_list(
            "payout_entry__external_ref",
            "line",
            "invoice_ref",
            "target",
            "to_late_fees_minor",
            "to_principal_minor",
            "to_merchant_minor",
            "to_suspense_minor",
            "recourse_netted_minor",
        )
    )
    suspense = list(
        SuspenseItem.objects.filter(merchant=world.trade.merchant)
        .order_by("payout_entry__external_ref", "line", "amount_minor")
        .values_list("payout_entry__external_ref", "line", "invoice_ref", "amount_minor")
    )
    recourse = sorted(
        Recourse.objects.filter(merchant=world.trade.merchant).values_list(
            "assignment__invoice_ref", "reason", "amount_minor"
        )
    )
    assignments = sorted(
        Assignment.objects.filter(merchant=world.trade.merchant).values_list(
            "invoice_ref",
            "status",
            "paid_minor",
            "diluted_minor",
            "principal_repaid_minor",
            "reserve_used_minor",
        )
    )
    return (sorted(_balances(world).items()), allocations, suspense, recourse, assignments)


def _history_run(world: World, history: list[dict[str, Any]], now: datetime) -> tuple[Any, ...]:
    for step, op in enumerate(history):
        _apply(world, step, op)
        settle_pending(now)
        _signs_hold(world, f"step {step} ({op['op']})")
    _payouts_add_up(world)
    books_and_chain_sound()  # (c)
    return _books(world)


def _check(
    trade: Trade, officer: User, now: datetime, shape: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    with transaction.atomic():
        try:
            world = _world_build(trade, officer, now, shape)
            with transaction.atomic():  # the savepoint the replay starts from
                first = _history_run(world, history, now)
                transaction.set_rollback(True)
            world.credited.clear()
            world.returned.clear()
            assert _history_run(world, history, now) == first
        finally:
            transaction.set_rollback(True)


@pytest.mark.postgres
@pytest.mark.django_db
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shape=worlds(), history=HISTORIES)
def test_any_history_settles_to_books_that_add_up_verify_and_replay_the_same(
    trade: Trade,
    facility: Facility,
    officer: User,
    now: datetime,
    shape: dict[str, Any],
    history: list[dict[str, Any]],
) -> None:
    _check(trade, officer, now, shape, history)


FULL_PAYMENT_AFTER_A_CREDIT = [
    {"op": "credit", "receivable": 0, "cents": 10_000},
    {"op": "payout", "lines": [(0, 90_000)], "unnamed": 0},
]


@pytest.mark.postgres
@pytest.mark.django_db
def test_negative_control_netting_more_than_the_recourse_owed_is_caught(
    trade: Trade, facility: Facility, officer: User, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    shape = {"financed": 2, "first_advance": 2}
    _check(trade, officer, now, shape, FULL_PAYMENT_AFTER_A_CREDIT)  # holds as built

    def nets_everything(self: Any, amount_minor: int, *, debit: str) -> int:
        # The guard switched off: keep back the whole payment whatever the merchant owes.
        self.recourse_open -= amount_minor
        self.move(amount_minor, debit=debit, credit="recourse_receivable")
        return amount_minor

    monkeypatch.setattr(settlement_books.SettlementBooks, "pay_merchant", nets_everything)
    with pytest.raises(AssertionError, match="recourse receivable credit after step 1"):
        _check(trade, officer, now, shape, FULL_PAYMENT_AFTER_A_CREDIT)
