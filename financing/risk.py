"""Risk assessment of an advance request, from the merchant's own ledger history.

Each factor is measured from evidence, scored against a plain threshold and explained in one
sentence an officer can check against the chain. The score is the sum of the factors' points
(0 = no confidence, 100 = the best history Chainfin can see); it informs the officer, it never
decides: approval stays a human act. Two factors watch the merchant after funding: an active
early warning (``financing.services.early_warning``) and the recourse it owes the bank.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q, Sum

from financing.accounts import recourse_owed
from financing.models import Advance, EarlyWarning, Receivable
from financing.selectors import early_warnings_active
from ledger.models import Entry, Invoice, Order, Shipment
from ledger.money import Money
from merchants.models import Merchant


@dataclass(frozen=True)
class Factor:
    name: str
    value: str
    points: int
    max_points: int
    explanation: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Assessment:
    score: int
    factors: tuple[Factor, ...]

    @property
    def grade(self) -> str:
        return grade_of(self.score)


def grade_of(score: int) -> str:
    for floor, grade in ((80, "A"), (65, "B"), (50, "C"), (35, "D")):
        if score >= floor:
            return grade
    return "E"


def risk_assess(merchant: Merchant, today: date) -> Assessment:
    history = _History.load(merchant, today)
    factors = tuple(measure(history) for measure in _FACTORS)
    return Assessment(score=sum(f.points for f in factors), factors=factors)


@dataclass(frozen=True)
class _History:
    days: int
    orders: int
    delivered: int
    shipped: int
    returned: int
    invoices: int
    credited_invoices: int
    invoiced_minor: int
    credited_minor: int
    largest_debtor_minor: int
    repaid: int
    repaid_on_time: int
    ever_overdue: int
    early_warnings: tuple[str, ...]  # the kinds active today, by label
    recourse_owed: dict[str, int]  # per currency

    @classmethod
    def load(cls, merchant: Merchant, today: date) -> _History:
        first = Entry.objects.filter(chain_id=merchant.pk).aggregate(first=Min("occurred_at"))
        orders = Order.objects.filter(merchant=merchant).exclude(status=Order.Status.CANCELLED)
        shipments = Shipment.objects.filter(merchant=merchant).aggregate(
            shipped=Count("order_ref", distinct=True),
            delivered=Count("order_ref", distinct=True, filter=Q(delivered_at__isnull=False)),
            returned=Count("order_ref", distinct=True, filter=Q(returned_at__isnull=False)),
        )
        invoices = Invoice.objects.filter(merchant=merchant)
        totals = invoices.aggregate(
            count=Count("id"),
            credited=Count("id", filter=Q(credited_minor__gt=0)),
            invoiced=Sum("amount_minor"),
            credited_minor=Sum("credited_minor"),
        )
        largest = _largest_debtor_total(merchant)
        advances = Advance.objects.filter(merchant=merchant)
        repaid = advances.filter(status=Advance.Status.REPAID)
        return cls(
            days=(today - first["first"].date()).days if first["first"] else 0,
            orders=orders.count(),
            delivered=shipments["delivered"],
            shipped=shipments["shipped"],
            returned=shipments["returned"],
            invoices=totals["count"],
            credited_invoices=totals["credited"],
            invoiced_minor=totals["invoiced"] or 0,
            credited_minor=totals["credited_minor"] or 0,
            largest_debtor_minor=largest,
            repaid=repaid.count(),
            repaid_on_time=repaid.filter(late_fee_minor=0).count(),
            ever_overdue=advances.filter(
                Q(status=Advance.Status.OVERDUE) | Q(late_fee_minor__gt=0)
            ).count(),
            early_warnings=_early_warning_kinds(merchant, today),
            recourse_owed=recourse_owed(merchant),
        )


def _early_warning_kinds(merchant: Merchant, today: date) -> tuple[str, ...]:
    active = early_warnings_active(today=today).filter(merchant=merchant)
    kinds = active.values_list("kind", flat=True).distinct().order_by("kind")
    return tuple(EarlyWarning.Kind(kind).label for kind in kinds)


def _largest_debtor_total(merchant: Merchant) -> int:
    """The invoiced amount of the merchant's largest debtor, by debtor identity (tax id or
    marketplace, as eligibility counts it), not by how each invoice spelled the name."""
    amounts = dict(Invoice.objects.filter(merchant=merchant).values_list("ref", "amount_minor"))
    totals: dict[str, int] = defaultdict(int)
    for ref, debtor_key in Receivable.objects.filter(merchant=merchant).values_list(
        "ref", "debtor_key"
    ):
        totals[debtor_key] += amounts.get(ref, 0)
    return max(totals.values(), default=0)


def _percent(part: int, whole: int) -> Decimal:
    return (Decimal(part) * 100 / whole).quantize(Decimal("0.1")) if whole else Decimal(0)


def _banded(value: Decimal, bands: tuple[tuple[Decimal, int], ...]) -> int:
    """Points of the first band whose bound ``value`` reaches (bands run from best to worst)."""
    for bound, points in bands:
        if value >= bound:
            return points
    return 0


def _history_length(h: _History) -> Factor:
    points = _banded(Decimal(h.days), ((Decimal(365), 10), (Decimal(180), 7), (Decimal(90), 3)))
    return Factor(
        "history_length",
        f"{h.days} days",
        points,
        10,
        f"The first evidence in the chain is {h.days} days old; a year or more earns full marks.",
    )


def _delivery_rate(h: _History) -> Factor:
    rate = _percent(h.delivered, h.orders)
    points = _banded(rate, ((Decimal(95), 15), (Decimal(85), 10), (Decimal(70), 5)))
    return Factor(
        "delivery_rate",
        f"{rate}%",
        points,
        15,
        f"{h.delivered} of {h.orders} open orders have a delivery in the ledger.",
    )


def _return_rate(h: _History) -> Factor:
    rate = _percent(h.returned, h.shipped)
    points = 10 - _banded(rate, ((Decimal(15), 10), (Decimal(8), 7), (Decimal(3), 3)))
    return Factor(
        "return_rate",
        f"{rate}%",
        points,
        10,
        f"{h.returned} of {h.shipped} shipped orders came back.",
    )


def _credit_note_rate(h: _History) -> Factor:
    rate = _percent(h.credited_invoices, h.invoices)
    points = 10 - _banded(rate, ((Decimal(15), 10), (Decimal(8), 6), (Decimal(3), 3)))
    return Factor(
        "credit_note_rate",
        f"{rate}%",
        points,
        10,
        f"{h.credited_invoices} of {h.invoices} invoices were credited in part or whole.",
    )


def _dilution(h: _History) -> Factor:
    rate = _percent(h.credited_minor, h.invoiced_minor)
    points = 10 - _banded(rate, ((Decimal(10), 10), (Decimal(5), 6), (Decimal(2), 3)))
    return Factor(
        "dilution",
        f"{rate}%",
        points,
        10,
        "Share of the invoiced amount later reduced by credit notes.",
    )


def _concentration(h: _History) -> Factor:
    share = _percent(h.largest_debtor_minor, h.invoiced_minor)
    points = 10 - _banded(share, ((Decimal(80), 10), (Decimal(60), 6), (Decimal(40), 3)))
    return Factor(
        "debtor_concentration",
        f"{share}%",
        points,
        10,
        "Share of the invoiced amount owed by the largest debtor.",
    )


def _repayment(h: _History) -> Factor:
    if not h.repaid:
        return Factor(
            "on_time_repayment", "no history", 5, 10, "No advance repaid yet: half marks."
        )
    rate = _percent(h.repaid_on_time, h.repaid)
    points = _banded(rate, ((Decimal(100), 10), (Decimal(90), 6), (Decimal(75), 3)))
    return Factor(
        "on_time_repayment",
        f"{rate}%",
        points,
        10,
        f"{h.repaid_on_time} of {h.repaid} repaid advances were repaid without late fees.",
    )


def _overdue(h: _History) -> Factor:
    points = max(10 - 5 * h.ever_overdue, 0)
    return Factor(
        "overdue_history",
        str(h.ever_overdue),
        points,
        10,
        f"{h.ever_overdue} advances went past due; each costs 5 points.",
    )


def _early_warnings(h: _History) -> Factor:
    days = settings.EARLY_WARNING_ACTIVE_DAYS
    if not h.early_warnings:
        explanation = f"No early warning in the last {days} days."
    else:
        explanation = f"Early warnings in the last {days} days: {'; '.join(h.early_warnings)}."
    return Factor(
        "early_warnings",
        str(len(h.early_warnings)),
        max(10 - 5 * len(h.early_warnings), 0),
        10,
        explanation + " Each kind costs 5 points.",
    )


def _recourse_owed(h: _History) -> Factor:
    owed = sum(h.recourse_owed.values())
    share = _percent(owed, h.invoiced_minor)
    # Any recourse open costs points: dilution the merchant has not made good yet.
    points = 5 if owed <= 0 else 3 - _banded(share, ((Decimal(5), 3), (Decimal(1), 2)))
    shown = ", ".join(Money.display(minor, cur) for cur, minor in h.recourse_owed.items())
    return Factor(
        "recourse_owed",
        shown or "none",
        points,
        5,
        f"Recourse owed to the bank (dilution after funding, late fees beyond the reserve): "
        f"{share}% of the invoiced amount; none earns full marks.",
    )


_FACTORS: tuple[Callable[[_History], Factor], ...] = (
    _history_length,
    _delivery_rate,
    _return_rate,
    _credit_note_rate,
    _dilution,
    _concentration,
    _repayment,
    _overdue,
    _early_warnings,
    _recourse_owed,
)
