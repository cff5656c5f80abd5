"""One settlement of one merchant in one currency: a payout's lines through the waterfall, or a
dilution taken from the receivables it concerns, gathered in memory and written at the end.

``financing.services.settlement`` takes the locks and claims the work; this module only moves
the balances of the assignments it was handed, locked, and writes their effects in the
caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q, Sum

from financing.business_day import business_day
from financing.models import Advance, Assignment, LineAllocation, Recourse, SuspenseItem
from financing.settlement_books import SettlementBooks, chain_ref
from financing.waterfall import (
    ReceivableBalance,
    dilution_take,
    payment_split,
    receivable_close,
)
from ledger.models import Entry, Invoice
from ledger.money import parse_minor_units
from merchants.models import Merchant

_RECOURSE_REASONS = {
    "invoice.credited": Recourse.Reason.CREDIT_NOTE,
    "shipment.returned": Recourse.Reason.RETURN,
    "order.cancelled": Recourse.Reason.CANCELLATION,
}


@dataclass
class _Receivable:
    """An assignment being settled, with its balance as the run moves it."""

    assignment: Assignment
    balance: ReceivableBalance
    recourse: dict[str, int] = field(default_factory=dict)

    def recourse_add(self, reason: str, amount_minor: int) -> None:
        self.recourse[reason] = self.recourse.get(reason, 0) + amount_minor


class SettlementRun:
    """One settlement of one merchant: lines applied in order, effects written at the end."""

    def __init__(
        self,
        merchant: Merchant,
        entry: Entry,
        currency: str,
        assignments: dict[str, Assignment],
        now: datetime,
    ) -> None:
        self.entry = entry
        self.now = now
        self.books = SettlementBooks(merchant=merchant, currency=currency, now=now)
        self.receivables = {
            ref: _Receivable(a, _balance(a))
            for ref, a in assignments.items()
            if a.advance.currency == currency
        }
        self.allocations: list[LineAllocation] = []
        self.suspense: list[SuspenseItem] = []

    # -- payouts ---------------------------------------------------------------------------

    def payout_apply(self, data: dict[str, Any]) -> None:
        currency = self.books.currency
        total = parse_minor_units(data["amount"], currency)
        self.books.move(total, debit="collections_clearing", credit="suspense")
        lines = data.get("lines", [])
        known = set(
            Invoice.objects.filter(
                merchant_id=self.entry.chain_id,
                ref__in=[line["invoice_ref"] for line in lines],
                currency=currency,
            ).values_list("ref", flat=True)
        )
        named = 0
        for index, line in enumerate(lines):
            amount = parse_minor_units(line["amount"], currency)
            named += amount
            self.line_apply(index, line["invoice_ref"], amount, known=line["invoice_ref"] in known)
        if total > named:
            why = "Part of the payout that no line names." if lines else "A payout without lines."
            self._suspense_hold(None, "", total - named, why)

    def line_apply(self, index: int, ref: str, amount: int, *, known: bool) -> None:
        """Apply ``amount``, held on the merchant's suspense account, as line ``index`` naming
        invoice ``ref``: through the waterfall to a financed receivable, to the merchant for a
        ``known`` unfinanced one or, ``ref`` empty, for money officers pass through; else it
        stays in suspense."""
        if ref in self.receivables:
            self._financed_line(index, ref, amount)
        elif known or not ref:
            self._merchant_line(index, ref, amount)
        else:
            currency = self.books.currency
            why = f"Line {index} names invoice '{ref}', unknown in {currency} for this merchant."
            self._allocate(index, ref, amount, LineAllocation.Target.SUSPENSE, to_suspense=amount)
            self._suspense_hold(index, ref, amount, why)

    def _financed_line(self, index: int, ref: str, amount: int) -> None:
        receivable = self.receivables[ref]
        split = payment_split(receivable.balance, amount)
        receivable.balance = split.after
        books = self.books
        # The line's money leaves suspense for the receivable, except any overpayment.
        books.move(split.applied, debit="suspense", credit="advances_receivable")
        self._late_fees_settle(
            receivable, split.late_fees_from_reserve, split.late_fees_to_recourse
        )
        netted = books.pay_merchant(split.to_merchant, debit="reserve_payable")
        allocation = self._allocate(
            index,
            ref,
            amount,
            LineAllocation.Target.FINANCED,
            assignment=receivable.assignment,
            to_late_fees=split.to_late_fees,
            to_principal=split.to_principal,
            to_merchant=split.to_merchant,
            to_suspense=split.to_suspense,
            netted=netted,
        )
        if split.to_suspense:
            self._suspense_hold(index, ref, split.to_suspense, f"Overpayment of invoice '{ref}'.")
        self._settled_event(allocation, receivable.balance.owed_by_debtor)
        if receivable.balance.closed:
            self._close(receivable)

    def _merchant_line(self, index: int, ref: str, amount: int) -> None:
        # An unfinanced receivable: the money is the merchant's, less recourse it owes.
        netted = self.books.pay_merchant(amount, debit="suspense")
        allocation = self._allocate(
            index, ref, amount, LineAllocation.Target.MERCHANT, to_merchant=amount, netted=netted
        )
        if ref:  # money passed through without an invoice settles no receivable
            self._settled_event(allocation, 0)

    def _allocate(
        self,
        index: int,
        ref: str,
        amount: int,
        target: str,
        *,
        assignment: Assignment | None = None,
        to_late_fees: int = 0,
        to_principal: int = 0,
        to_merchant: int = 0,
        to_suspense: int = 0,
        netted: int = 0,
    ) -> LineAllocation:
        allocation = LineAllocation(
            payout_entry=self.entry,
            line=index,
            merchant_id=self.entry.chain_id,
            currency=self.books.currency,
            invoice_ref=ref,
            target=target,
            assignment=assignment,
            amount_minor=amount,
            to_late_fees_minor=to_late_fees,
            to_principal_minor=to_principal,
            to_merchant_minor=to_merchant,
            to_suspense_minor=to_suspense,
            recourse_netted_minor=netted,
            settled_at=self.now,
        )
        self.allocations.append(allocation)
        return allocation

    def _suspense_hold(self, line: int | None, ref: str, amount: int, reason: str) -> None:
        # The money stays on the suspense account, where payout_apply put it.
        self.suspense.append(
            SuspenseItem(
                ref=chain_ref("sus", self.entry.pk, "rest" if line is None else line),
                merchant_id=self.entry.chain_id,
                currency=self.books.currency,
                amount_minor=amount,
                reason=reason[:300],
                payout_entry=self.entry,
                line=line,
                invoice_ref=ref,
                created_at=self.now,
            )
        )

    def _settled_event(self, allocation: LineAllocation, outstanding: int) -> None:
        books = self.books
        data: dict[str, Any] = {
            "amount": books.amount(allocation.amount_minor),
            "invoice_ref": allocation.invoice_ref,
            "payout_ref": self.entry.external_ref,
            "line": allocation.line,
            "to_late_fees": books.amount(allocation.to_late_fees_minor),
            "to_principal": books.amount(allocation.to_principal_minor),
            "to_merchant": books.amount(allocation.to_merchant_minor),
            "to_suspense": books.amount(allocation.to_suspense_minor),
            "outstanding": books.amount(outstanding),
        }
        if allocation.assignment is not None:
            data["advance_ref"] = allocation.assignment.advance.ref
        ref = chain_ref(self.entry.external_ref, allocation.line)
        books.event("receivable.settled", ref, data)

    # -- dilution --------------------------------------------------------------------------

    def dilution_apply(self, event_type: str, data: dict[str, Any]) -> None:
        for receivable in self.receivables.values():
            if event_type == "invoice.credited":
                wanted = parse_minor_units(data["amount"], self.books.currency)
            else:  # the goods came back or were never sent: nothing of it will be paid
                wanted = receivable.balance.owed_by_debtor
            taken, receivable.balance = dilution_take(receivable.balance, wanted)
            if taken:
                self.books.recourse_raise(taken, credit="advances_receivable")
                receivable.recourse_add(_RECOURSE_REASONS[event_type], taken)
            if receivable.balance.closed:
                self._close(receivable)

    # -- closing ---------------------------------------------------------------------------

    def _late_fees_settle(
        self, receivable: _Receivable, from_reserve: int, to_recourse: int
    ) -> None:
        # Late fees are the merchant's debt: taken from its reserve, beyond it owed as recourse.
        self.books.move(from_reserve, debit="reserve_payable", credit="advances_receivable")
        if to_recourse:
            self.books.recourse_raise(to_recourse, credit="advances_receivable")
            receivable.recourse_add(Recourse.Reason.LATE_FEES, to_recourse)

    def _close(self, receivable: _Receivable) -> None:
        closing = receivable_close(receivable.balance)
        receivable.balance = closing.after
        self._late_fees_settle(
            receivable, closing.late_fees_from_reserve, closing.late_fees_to_recourse
        )
        assignment = receivable.assignment
        netted = self.books.pay_merchant(closing.reserve_released, debit="reserve_payable")
        if closing.reserve_released:
            self.books.event(
                "reserve.released",
                chain_ref(assignment.invoice_ref, assignment.advance.ref, "released"),
                {
                    "amount": self.books.amount(closing.reserve_released),
                    "invoice_ref": assignment.invoice_ref,
                    "recourse_netted": self.books.amount(netted),
                },
            )
        assignment.status = Assignment.Status.SETTLED
        assignment.closed_at = self.now

    # -- writing ---------------------------------------------------------------------------

    def finish(self, *, key: str) -> None:
        for receivable in self.receivables.values():
            self._recourse_record(receivable)
            _balance_store(receivable.assignment, receivable.balance)
        _assignments_store([r.assignment for r in self.receivables.values()], self.now)
        LineAllocation.objects.bulk_create(self.allocations)
        SuspenseItem.objects.bulk_create(self.suspense)
        advances = {r.assignment.advance for r in self.receivables.values()}
        outstanding = [a.pk for a in advances if a.status in Advance.OUTSTANDING]
        tallies = _advance_tallies(outstanding, business_day(self.now))
        for advance in advances:
            self._advance_repaid_if_closed(advance, tallies)
        self.books.write(
            key=key,
            memo=f"{self.entry.type} {self.entry.external_ref} of {self.books.merchant.public_id}",
        )

    def _recourse_record(self, receivable: _Receivable) -> None:
        assignment = receivable.assignment
        for reason, amount in sorted(receivable.recourse.items()):
            Recourse.objects.create(
                merchant_id=assignment.merchant_id,
                assignment=assignment,
                source_entry=self.entry,
                currency=self.books.currency,
                amount_minor=amount,
                reason=reason,
                raised_at=self.now,
            )
            self.books.event(
                "recourse.raised",
                chain_ref(assignment.invoice_ref, assignment.advance.ref, reason, self.entry.seq),
                {
                    "amount": self.books.amount(amount),
                    "invoice_ref": assignment.invoice_ref,
                    "advance_ref": assignment.advance.ref,
                    "reason": Recourse.Reason(reason).label,
                },
            )

    def _advance_repaid_if_closed(self, advance: Advance, tallies: dict[int, _Tally]) -> None:
        if advance.status not in Advance.OUTSTANDING:
            return
        tally = tallies[advance.pk]
        if tally.open_left:
            if advance.status == Advance.Status.OVERDUE and not tally.past_due_left:
                # The receivables past due are paid; the rest is not due yet.
                advance.status = Advance.Status.DISBURSED
                advance.save(update_fields=["status"])
            return
        advance.status = Advance.Status.REPAID
        advance.repaid_at = self.now
        unearned = advance.fee_minor - advance.fee_recognised_minor
        advance.fee_recognised_minor = advance.fee_minor
        advance.save(update_fields=["status", "repaid_at", "fee_recognised_minor"])
        # The credit line revolves: the room this advance took comes back at once.
        facility = advance.facility
        facility.committed_minor = F("committed_minor") - advance.advance_minor
        facility.save(update_fields=["committed_minor"])
        # Repaid early or late, the whole discount fee is earned once the advance is repaid.
        self.books.move(unearned, debit="unearned_discount", credit="fee_income")
        self.books.event(
            "advance.repaid",
            chain_ref(advance.ref, "repaid"),
            {
                "amount": self.books.amount(tally.principal_repaid),
                "advance_ref": advance.ref,
                "payout_ref": self.entry.external_ref,
            },
        )


# One statement for all of a run's receivables: ``bulk_update`` resolves a CASE per column and
# row, which cost more than everything else a payout of a hundred lines does. UPDATE … FROM
# (VALUES …) reads the same on PostgreSQL and on SQLite (3.33+), which both name the columns of
# VALUES column1, column2, …. A receivable settled in this run closed in it, at ``now``: a
# closed_at column in VALUES would be all NULLs at times, which PostgreSQL cannot type.
_ASSIGNMENTS_STORE = """
UPDATE financing_assignment
SET paid_minor = v.column2, diluted_minor = v.column3, late_fee_paid_minor = v.column4,
    principal_repaid_minor = v.column5, reserve_used_minor = v.column6, status = v.column7,
    closed_at = CASE WHEN v.column7 = 'settled' THEN %s ELSE financing_assignment.closed_at END
FROM (VALUES {rows}) AS v
WHERE financing_assignment.id = v.column1
"""


def _assignments_store(assignments: list[Assignment], now: datetime) -> None:
    """Write the settlement fields of ``assignments``, as the run left them, in one statement."""
    if not assignments:
        return
    params: list[Any] = [connection.ops.adapt_datetimefield_value(now)]
    for a in assignments:
        params += [
            a.pk,
            a.paid_minor,
            a.diluted_minor,
            a.late_fee_paid_minor,
            a.principal_repaid_minor,
            a.reserve_used_minor,
            a.status,
        ]
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(assignments))
    with connection.cursor() as cursor:
        # The statement holds only placeholders; the values travel as parameters.
        cursor.execute(_ASSIGNMENTS_STORE.format(rows=rows), params)


@dataclass(frozen=True)
class _Tally:
    open_left: int  # the advance's assignments not settled yet
    past_due_left: int  # of those, the ones past their due date
    principal_repaid: int


def _advance_tallies(advance_ids: list[int], today: date) -> dict[int, _Tally]:
    """Each advance's assignments still open (and past due), and the principal repaid on them,
    in one query for all the advances a run touched (read after the run stored its
    assignments)."""
    open_ = ~Q(status=Assignment.Status.SETTLED)
    rows = (
        Assignment.objects.filter(advance_id__in=advance_ids)
        .values("advance_id")
        .annotate(
            open_left=Count("pk", filter=open_),
            past_due_left=Count("pk", filter=open_ & Q(due_date__lt=today)),
            principal_repaid=Sum("principal_repaid_minor"),
        )
    )
    return {
        row["advance_id"]: _Tally(row["open_left"], row["past_due_left"], row["principal_repaid"])
        for row in rows
    }


def _balance(assignment: Assignment) -> ReceivableBalance:
    return ReceivableBalance(
        face_minor=assignment.face_minor,
        advance_minor=assignment.advance_minor,
        late_fee_minor=assignment.late_fee_minor,
        paid_minor=assignment.paid_minor,
        diluted_minor=assignment.diluted_minor,
        late_fee_paid_minor=assignment.late_fee_paid_minor,
        principal_repaid_minor=assignment.principal_repaid_minor,
        reserve_used_minor=assignment.reserve_used_minor,
    )


def _balance_store(assignment: Assignment, balance: ReceivableBalance) -> None:
    assignment.paid_minor = balance.paid_minor
    assignment.diluted_minor = balance.diluted_minor
    assignment.late_fee_paid_minor = balance.late_fee_paid_minor
    assignment.principal_repaid_minor = balance.principal_repaid_minor
    assignment.reserve_used_minor = balance.reserve_used_minor
