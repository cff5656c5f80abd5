"""Matching a settlement report's lines to the ledger's payouts and receivables, in batches.

Each line is judged once, and at most one break comes of it, the first of these that applies
(so one difference is one break, never two):

1. its payout is not in the ledger (``missing_in_ledger``);
2. its invoice (or, for layouts naming orders, the invoice of its order) is no receivable of
   the payout's merchant (``unknown_reference``);
3. the payout has no line for that invoice (``missing_in_ledger``);
4. every ledger line for that invoice was already paid by an earlier report line, or a line
   matching nothing repeats an earlier line's id (``duplicate_line``);
5. it was paid to the merchant although the receivable is assigned to the bank
   (``diverted_payment``);
6. its currency is not the payout's (``currency_mismatch``);
7. its amount is not the ledger line's (``amount_mismatch``).

At the end, every ledger line of the marketplace's payouts to the report's merchants within its
period (first to last settlement date) that no report line paid is ``missing_in_report``: one
break per line, or one per payout when the report names none of its lines.

Memory stays bounded by the batch, not the report: payouts are loaded when a line names them
and kept in a small LRU, and what survives a payout's eviction is one byte per ledger line (was
it paid?). Break keys name the job and the line number or ledger line, so a re-run of the same
job finds exactly the same breaks and the database's UNIQUE(kind, key) keeps one of each.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from financing.models import Assignment, Break, ReconJob
from financing.reconciliation.formats import PAID_TO_MERCHANT, ReportLine
from ledger.models import Invoice, Payout
from ledger.money import CURRENCY_EXPONENTS

CACHED_PAYOUTS = 128


@dataclass
class _LedgerPayout:
    pk: int
    merchant_id: int
    ref: str
    currency: str
    # invoice ref -> (index in ``lines``, amount) of each ledger line naming it, in order.
    lines: dict[str, list[tuple[int, int]]]


@dataclass
class MatchTally:
    """What the job reports: lines matched, lines paying no receivable, breaks by kind."""

    matched: int = 0
    unallocated: int = 0
    breaks: Counter[str] = field(default_factory=Counter)
    first_settled: date | None = None
    last_settled: date | None = None
    payouts: int = 0


def _ledger_amount(amount: str, currency: str) -> int:
    """Minor units of a ledger payout line's amount: a canonical decimal string the ledger
    validated when the payout was appended, so converting it is all that is left."""
    exponent = CURRENCY_EXPONENTS[currency]
    whole, _, fraction = amount.partition(".")
    scale: int = 10**exponent
    return int(whole) * scale + int(fraction.ljust(exponent, "0") or 0)


def _ledger_payout(row: Mapping[str, Any]) -> _LedgerPayout:
    lines: dict[str, list[tuple[int, int]]] = {}
    for index, line in enumerate(row["lines"]):
        amount = _ledger_amount(line["amount"], row["currency"])
        lines.setdefault(line["invoice_ref"], []).append((index, amount))
    return _LedgerPayout(row["pk"], row["merchant_id"], row["ref"], row["currency"], lines)


class SettlementMatcher:
    """Matches the lines of one job's report, batch by batch; ``finish`` adds what is missing."""

    def __init__(self, *, job: ReconJob, marketplace_code: str, sums_orders: bool, now: datetime):
        self.job, self.source, self.sums_orders, self.now = job, marketplace_code, sums_orders, now
        self.tally = MatchTally()
        self._cache: OrderedDict[str, list[_LedgerPayout]] = OrderedDict()
        self._absent: set[str] = set()  # payout refs the ledger does not have
        self._paid: dict[int, bytearray] = {}  # payout pk -> 1 per ledger line a line paid
        self._merchants: set[int] = set()
        self._unmatched_ids: set[str] = set()  # line ids of lines that matched no ledger line
        self._assigned_read: set[int] = set()  # merchants whose assignments were read
        self._assigned_refs: set[tuple[int, str]] = set()
        # Layouts that spread an order over rows: the current payout's orders, summed.
        self._order_payout = ""
        self._orders: dict[str, ReportLine] = {}

    # --- feeding -------------------------------------------------------------------------

    def feed(self, lines: Iterable[ReportLine]) -> list[Break]:
        """Judge a batch of lines; return the breaks found, for the caller to write."""
        items: list[ReportLine] = []
        lines = list(lines)
        for settled_on in {line.settled_on for line in lines}:
            self._period(settled_on)
        for line in lines:
            if not line.invoice_ref and not line.order_ref:
                self.tally.unallocated += 1
            elif self.sums_orders:
                items += self._summed(line)
            else:
                items.append(line)
        return self._judge(items)

    def flush(self) -> list[Break]:
        """Judge the orders still being summed (the last payout of the report)."""
        items, self._orders, self._order_payout = list(self._orders.values()), {}, ""
        return self._judge(items)

    def _summed(self, line: ReportLine) -> list[ReportLine]:
        """Sum an order's rows while its payout lasts; emit the payout's orders when it ends."""
        done: list[ReportLine] = []
        if line.payout_ref != self._order_payout:
            done, self._orders = list(self._orders.values()), {}
            self._order_payout = line.payout_ref
        earlier = self._orders.get(line.order_ref)
        if earlier is None:
            self._orders[line.order_ref] = line._replace(
                line_id=f"{line.payout_ref}:{line.order_ref}"
            )
        else:
            total = earlier.amount_minor + line.amount_minor
            self._orders[line.order_ref] = earlier._replace(amount_minor=total)
        return done

    def _period(self, settled_on: date) -> None:
        tally = self.tally
        if tally.first_settled is None or settled_on < tally.first_settled:
            tally.first_settled = settled_on
        if tally.last_settled is None or settled_on > tally.last_settled:
            tally.last_settled = settled_on

    # --- judging -------------------------------------------------------------------------

    def _judge(self, items: list[ReportLine]) -> list[Break]:
        if not items:
            return []
        self._load({item.payout_ref for item in items})
        resolved = [(item, self._payout_of(item)) for item in items]
        known = self._known_invoices(resolved)
        by_order = self._invoices_by_order(resolved)
        assigned = self._assigned(resolved)
        breaks = []
        for item, payout in resolved:
            found = self._judge_one(item, payout, known, by_order, assigned)
            if found is not None:
                self.tally.breaks[found.kind] += 1
                breaks.append(found)
        return breaks

    def _judge_one(
        self,
        item: ReportLine,
        payout: _LedgerPayout | None,
        known: set[tuple[int, str]],
        by_order: dict[tuple[int, str], list[str]],
        assigned: set[tuple[int, str]],
    ) -> Break | None:
        if payout is None:
            return self._unmatched(item, Break.Kind.MISSING_IN_LEDGER, None, None)
        self._merchants.add(payout.merchant_id)
        invoice_ref = self._invoice_of(item, payout, by_order)
        # An invoice found through its order exists; one named outright may not.
        if invoice_ref is None or (
            item.invoice_ref
            and invoice_ref not in payout.lines
            and (payout.merchant_id, invoice_ref) not in known
        ):
            return self._unmatched(item, Break.Kind.UNKNOWN_REFERENCE, payout, None)
        candidates = payout.lines.get(invoice_ref)
        if candidates is None:
            return self._unmatched(item, Break.Kind.MISSING_IN_LEDGER, payout, invoice_ref)
        paid = self._paid[payout.pk]
        if len(candidates) == 1:  # nearly always: one ledger line per invoice and payout
            free: tuple[int, int] | None = None if paid[candidates[0][0]] else candidates[0]
        else:
            free = next(((i, amount) for i, amount in candidates if not paid[i]), None)
        if free is None:
            return self._break(item, Break.Kind.DUPLICATE_LINE, payout, invoice_ref, None)
        index, expected = free
        paid[index] = 1
        if item.paid_to == PAID_TO_MERCHANT and (payout.merchant_id, invoice_ref) in assigned:
            return self._break(item, Break.Kind.DIVERTED_PAYMENT, payout, invoice_ref, expected)
        if item.currency != payout.currency:
            return self._break(item, Break.Kind.CURRENCY_MISMATCH, payout, invoice_ref, expected)
        if item.amount_minor != expected:
            return self._break(item, Break.Kind.AMOUNT_MISMATCH, payout, invoice_ref, expected)
        self.tally.matched += 1
        return None

    def _unmatched(
        self, item: ReportLine, kind: str, payout: _LedgerPayout | None, invoice_ref: str | None
    ) -> Break:
        # Only lines matching nothing need their ids remembered: a repeat of a matched line
        # finds its ledger line already paid.
        if item.line_id in self._unmatched_ids:
            kind = Break.Kind.DUPLICATE_LINE
        self._unmatched_ids.add(item.line_id)
        return self._break(item, kind, payout, invoice_ref, None)

    def _invoice_of(
        self,
        item: ReportLine,
        payout: _LedgerPayout,
        by_order: dict[tuple[int, str], list[str]],
    ) -> str | None:
        if item.invoice_ref:
            return item.invoice_ref
        refs = by_order.get((payout.merchant_id, item.order_ref), [])
        # An order billed by several invoices: the one this payout pays, else any.
        return next((ref for ref in refs if ref in payout.lines), refs[0] if refs else None)

    def _break(
        self,
        item: ReportLine,
        kind: str,
        payout: _LedgerPayout | None,
        invoice_ref: str | None,
        expected: int | None,
    ) -> Break:
        return Break(
            job=self.job,
            key=f"settlement:{self.job.pk}:line:{item.number}",
            kind=kind,
            merchant_id=payout.merchant_id if payout else None,
            currency=item.currency,
            amount_minor=item.amount_minor,
            expected_minor=expected,
            reference=item.line_id[:255],
            found_at=self.now,
            detail={
                "line": item.number,
                "line_id": item.line_id,
                "payout_ref": item.payout_ref,
                "invoice_ref": invoice_ref or item.invoice_ref,
                "order_ref": item.order_ref,
                "paid_to": item.paid_to,
                "settled_on": item.settled_on.isoformat(),
                "ledger_currency": payout.currency if payout else None,
            },
        )

    # --- the ledger, a batch at a time ----------------------------------------------------

    def _load(self, refs: set[str]) -> None:
        for ref in refs & self._cache.keys():
            self._cache.move_to_end(ref)
        wanted = refs - self._cache.keys() - self._absent
        if not wanted:
            return
        found: dict[str, list[_LedgerPayout]] = {}
        rows = Payout.objects.filter(source=self.source, ref__in=wanted).values(
            "pk", "merchant_id", "ref", "currency", "lines"
        )
        for row in rows.order_by("pk"):
            payout = _ledger_payout(row)
            found.setdefault(payout.ref, []).append(payout)
            if payout.pk not in self._paid:
                self._paid[payout.pk] = bytearray(len(row["lines"]))
                self.tally.payouts += 1
        self._absent |= wanted - found.keys()
        self._cache.update(found)
        while len(self._cache) > CACHED_PAYOUTS:
            self._cache.popitem(last=False)

    def _payout_of(self, item: ReportLine) -> _LedgerPayout | None:
        payouts = self._cache.get(item.payout_ref)
        if not payouts:
            return None
        if len(payouts) == 1:
            return payouts[0]
        # One marketplace's payout refs are its own; should two merchants share one, the one
        # whose lines name this line's invoice is meant.
        return next((p for p in payouts if item.invoice_ref in p.lines), payouts[0])

    def _known_invoices(
        self, resolved: list[tuple[ReportLine, _LedgerPayout | None]]
    ) -> set[tuple[int, str]]:
        """Which invoice refs, named by lines but by none of their payout's lines, exist."""
        wanted = {
            (payout.merchant_id, item.invoice_ref)
            for item, payout in resolved
            if payout is not None and item.invoice_ref and item.invoice_ref not in payout.lines
        }
        if not wanted:
            return set()
        rows = Invoice.objects.filter(
            merchant_id__in={m for m, _ in wanted}, ref__in={r for _, r in wanted}
        ).values_list("merchant_id", "ref")
        return set(rows) & wanted

    def _invoices_by_order(
        self, resolved: list[tuple[ReportLine, _LedgerPayout | None]]
    ) -> dict[tuple[int, str], list[str]]:
        wanted = {
            (payout.merchant_id, item.order_ref)
            for item, payout in resolved
            if payout is not None and not item.invoice_ref and item.order_ref
        }
        if not wanted:
            return {}
        by_order: dict[tuple[int, str], list[str]] = {}
        rows = Invoice.objects.filter(
            merchant_id__in={m for m, _ in wanted}, order_ref__in={o for _, o in wanted}
        ).values_list("merchant_id", "order_ref", "ref")
        for merchant_id, order_ref, ref in rows.order_by("pk"):
            by_order.setdefault((merchant_id, order_ref), []).append(ref)
        return by_order

    def _assigned(
        self, resolved: list[tuple[ReportLine, _LedgerPayout | None]]
    ) -> set[tuple[int, str]]:
        """The receivables assigned to the bank, of every merchant paid directly so far.

        Read once per merchant and kept for the job: a merchant's live assignments are bounded
        by its facility, and one query per merchant beats a query naming every line's invoice.
        """
        for item, payout in resolved:
            if (
                payout is not None
                and item.paid_to == PAID_TO_MERCHANT
                and payout.merchant_id not in self._assigned_read
            ):
                self._assigned_read.add(payout.merchant_id)
                refs = Assignment.objects.filter(
                    merchant_id=payout.merchant_id, status=Assignment.Status.ASSIGNED
                ).values_list("invoice_ref", flat=True)
                self._assigned_refs.update((payout.merchant_id, ref) for ref in refs)
        return self._assigned_refs

    # --- the end -------------------------------------------------------------------------

    def missing_in_report(self, *, chunk: int = 200) -> Iterator[Break]:
        """Ledger lines of the report's merchants and period that no line paid, as breaks."""
        first, last = self.tally.first_settled, self.tally.last_settled
        if first is None or last is None or not self._merchants:
            return
        rows = (
            Payout.objects.filter(
                source=self.source,
                merchant_id__in=sorted(self._merchants),
                settled_on__range=(first, last),
            )
            .order_by("pk")
            .values("pk", "merchant_id", "ref", "currency", "amount_minor", "lines")
        )
        for row in rows.iterator(chunk_size=chunk):
            paid = self._paid.get(row["pk"])
            if paid is None:
                yield self._missing(row, None, None, row["amount_minor"])
                continue
            for index, line in enumerate(row["lines"]):
                if not paid[index]:
                    amount = _ledger_amount(line["amount"], row["currency"])
                    yield self._missing(row, index, line["invoice_ref"], amount)

    def _missing(
        self, row: Mapping[str, Any], index: int | None, invoice_ref: str | None, expected: int
    ) -> Break:
        where = "" if index is None else f":{index}"
        self.tally.breaks[Break.Kind.MISSING_IN_REPORT] += 1
        return Break(
            job=self.job,
            key=f"settlement:{self.job.pk}:payout:{row['pk']}{where}",
            kind=Break.Kind.MISSING_IN_REPORT,
            merchant_id=row["merchant_id"],
            currency=row["currency"],
            amount_minor=None,
            expected_minor=expected,
            reference=(invoice_ref or row["ref"])[:255],
            found_at=self.now,
            detail={
                "payout_ref": row["ref"],
                "ledger_line": index,
                "invoice_ref": invoice_ref,
                "whole_payout": index is None,
            },
        )
