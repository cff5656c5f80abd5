"""Settlement reports written from the ledger's real payouts, with differences injected."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from financing.models import Assignment
from financing.reconciliation.formats import CHAINFIN_COLUMNS
from ledger.models import Payout
from ledger.money import format_minor_units
from merchants.models import Marketplace, Merchant


@dataclass(frozen=True)
class Line:
    line_id: str
    payout_ref: str
    invoice_ref: str
    currency: str
    amount_minor: int
    paid_to: str
    settled_on: str
    order_ref: str = ""

    def cells(self) -> list[str]:
        amount = format_minor_units(self.amount_minor, "EUR")
        return [
            self.line_id,
            self.payout_ref,
            self.invoice_ref,
            self.order_ref,
            self.currency,
            amount,
            self.paid_to,
            self.settled_on,
        ]


def ledger_lines(marketplace: Marketplace, merchants: Sequence[Merchant]) -> list[Line]:
    """Every line of the marketplace's payouts, as the marketplace would report it: paid to the
    bank when the receivable is assigned to it, to the merchant otherwise."""
    assigned = set(
        Assignment.objects.filter(
            merchant__in=merchants, status=Assignment.Status.ASSIGNED
        ).values_list("merchant_id", "invoice_ref")
    )
    lines = []
    for payout in Payout.objects.filter(source=marketplace.code, merchant__in=merchants).order_by(
        "pk"
    ):
        for index, line in enumerate(payout.lines):
            whole, _, cents = line["amount"].partition(".")
            lines.append(
                Line(
                    line_id=f"{payout.ref}-{index}",
                    payout_ref=payout.ref,
                    invoice_ref=line["invoice_ref"],
                    currency=payout.currency,
                    amount_minor=int(whole) * 100 + int(cents.ljust(2, "0")),
                    paid_to="bank"
                    if (payout.merchant_id, line["invoice_ref"]) in assigned
                    else "merchant",
                    settled_on=payout.settled_on.isoformat(),
                )
            )
    return lines


def report_bytes(lines: Iterable[Line], columns: Sequence[str] = CHAINFIN_COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(line.cells() for line in lines)
    return out.getvalue().encode()


def chunks_of(path: Path, size: int = 65536) -> Iterable[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def with_amount(line: Line, delta: int) -> Line:
    return replace(line, amount_minor=line.amount_minor + delta)
