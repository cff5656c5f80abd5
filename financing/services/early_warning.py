"""Monitoring after funding: the daily early-warning list, with the evidence behind each entry.

Every merchant with an advance outstanding is measured from its own ledger projections:

* orders (placed, not cancelled) or deliveries in the last 30 days that fell by more than
  ``EARLY_WARNING_DROP_BP`` against their monthly average over the 90 days before;
* returns or credit notes in the last 30 days that rose more than ``EARLY_WARNING_SPIKE_BP``
  above theirs (and number at least ``EARLY_WARNING_SPIKE_MIN``);
* financed receivables past due and still unpaid (payouts late), or paid less than the debtor
  owes on them (payouts short).

The month is compared with the three months *before* it, not with a 90-day window that holds
it: a month measured partly against itself would hide a third of its own fall.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet

from financing.business_day import business_day
from financing.models import Advance, Assignment, EarlyWarning
from ledger.models import Entry, Order, Shipment
from ledger.money import Money, format_minor_units

WINDOW = timedelta(days=30)
BASELINE = timedelta(days=90)
MONTHS_IN_BASELINE = 3
LISTED = 20  # receivables a warning names one by one; its count and totals cover them all
Kind = EarlyWarning.Kind


def early_warnings_run(*, now: datetime) -> int:
    """Put every merchant with money outstanding whose evidence turned for the worse on today's
    early-warning list, with the figures; return how many warnings today's evidence shows.

    Idempotent per day: a warning is unique per (merchant, kind, business day), so a re-run the
    same day adds nothing and keeps the first run's evidence. Reads projections and settlement
    state only; writes nothing but the list.
    """
    today = business_day(now)
    outstanding = Advance.objects.filter(status__in=Advance.OUTSTANDING)
    merchant_ids = outstanding.values_list("merchant_id", flat=True).distinct().order_by()
    warnings = [
        EarlyWarning(
            merchant_id=merchant_id,
            kind=kind,
            observed_on=today,
            evidence=evidence,
            created_at=now,
        )
        for merchant_id in sorted(set(merchant_ids))
        for kind, evidence in _findings(merchant_id, now, today)
    ]
    with transaction.atomic():
        # ON CONFLICT DO NOTHING on (merchant, kind, observed_on): the once-a-day guarantee.
        EarlyWarning.objects.bulk_create(warnings, ignore_conflicts=True)
    return len(warnings)


def _findings(merchant_id: int, now: datetime, today: date) -> Iterator[tuple[str, dict[str, Any]]]:
    orders = Order.objects.filter(merchant_id=merchant_id).exclude(status=Order.Status.CANCELLED)
    shipments = Shipment.objects.filter(merchant_id=merchant_id)
    credit_notes = Entry.objects.filter(chain_id=merchant_id, type="invoice.credited")
    drops = (
        (Kind.ORDERS_DROP, _trend("orders", orders, "placed_at", now)),
        (Kind.DELIVERIES_DROP, _trend("deliveries", shipments, "delivered_at", now)),
    )
    for kind, trend in drops:
        if trend.fell():
            yield kind, trend.evidence(threshold_bp=settings.EARLY_WARNING_DROP_BP)
    spikes = (
        (Kind.RETURNS_SPIKE, _trend("returns", shipments, "returned_at", now)),
        (Kind.CREDIT_NOTES_SPIKE, _trend("credit notes", credit_notes, "occurred_at", now)),
    )
    for kind, trend in spikes:
        if trend.spiked():
            yield kind, trend.evidence(threshold_bp=settings.EARLY_WARNING_SPIKE_BP)
    financed = Assignment.objects.filter(
        merchant_id=merchant_id,
        status=Assignment.Status.ASSIGNED,
        advance__status__in=Advance.OUTSTANDING,
    ).select_related("advance")
    late = list(financed.filter(due_date__lt=today).order_by("due_date", "pk"))
    if late:
        yield Kind.PAYOUTS_LATE, _late_evidence(late, today)
    short = list(
        financed.filter(
            paid_minor__gt=0, paid_minor__lt=F("face_minor") - F("diluted_minor")
        ).order_by("due_date", "pk")
    )
    if short:
        yield Kind.PAYOUTS_SHORT, _short_evidence(short)


@dataclass(frozen=True)
class _Trend:
    """How many of something in the last 30 days, and in the 90 days before them."""

    metric: str
    recent: int
    prior: int

    @property
    def monthly_average(self) -> Decimal:
        """prior / 3 to one decimal, half up, in integers (no division where figures are made)."""
        tenths = (self.prior * 20 + MONTHS_IN_BASELINE) // (2 * MONTHS_IN_BASELINE)
        return Decimal(tenths).scaleb(-1)

    def change_bp(self) -> int | None:
        """The month against the monthly average, in basis points (-10000: none at all)."""
        if not self.prior:
            return None
        return (MONTHS_IN_BASELINE * self.recent - self.prior) * 10_000 // self.prior

    def fell(self) -> bool:
        # Integer arithmetic: recent < average x (1 - drop), with the average as prior / 3.
        floor: int = MONTHS_IN_BASELINE * settings.EARLY_WARNING_MIN_MONTHLY
        shortfall = (self.prior - MONTHS_IN_BASELINE * self.recent) * 10_000
        return self.prior >= floor and shortfall > settings.EARLY_WARNING_DROP_BP * self.prior

    def spiked(self) -> bool:
        rise = MONTHS_IN_BASELINE * self.recent * 10_000
        least: int = settings.EARLY_WARNING_SPIKE_MIN
        return self.recent >= least and rise > self.prior * (
            10_000 + settings.EARLY_WARNING_SPIKE_BP
        )

    def evidence(self, *, threshold_bp: int) -> dict[str, Any]:
        change = self.change_bp()
        if change is None:
            how = "none in the 90 days before"
        else:
            how = (
                f"a monthly average of {self.monthly_average} over the 90 days before: "
                f"{'down' if change < 0 else 'up'} {_percent(abs(change))}, "
                f"more than the {_percent(threshold_bp)} that warns"
            )
        return {
            "metric": self.metric,
            "last_30_days": self.recent,
            "prior_90_days": self.prior,
            "monthly_average": str(self.monthly_average),
            "change_bp": change,
            "threshold_bp": threshold_bp,
            "summary": f"{self.recent} {self.metric} in the last 30 days against {how}.",
        }


def _trend(metric: str, rows: QuerySet[Any], moment: str, now: datetime) -> _Trend:
    recent_from = now - WINDOW
    counts = rows.filter(
        **{f"{moment}__gte": recent_from - BASELINE, f"{moment}__lte": now}
    ).aggregate(
        recent=Count("pk", filter=Q(**{f"{moment}__gte": recent_from})),
        prior=Count("pk", filter=Q(**{f"{moment}__lt": recent_from})),
    )
    return _Trend(metric, counts["recent"], counts["prior"])


def _percent(bp: int) -> str:
    return f"{Decimal(bp).scaleb(-2):.1f} %"


def _owed(assignment: Assignment) -> int:
    return assignment.face_minor - assignment.paid_minor - assignment.diluted_minor


def _by_currency(amounts: list[tuple[int, str]]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for minor, currency in amounts:
        totals[currency] += minor
    return dict(sorted(totals.items()))


def _totals(amounts: list[tuple[int, str]]) -> dict[str, str]:
    return {cur: format_minor_units(minor, cur) for cur, minor in _by_currency(amounts).items()}


def _shown(amounts: list[tuple[int, str]]) -> str:
    return ", ".join(Money.display(minor, cur) for cur, minor in _by_currency(amounts).items())


def _row(assignment: Assignment) -> dict[str, Any]:
    currency = assignment.advance.currency
    return {
        "invoice_ref": assignment.invoice_ref,
        "advance_ref": assignment.advance.ref,
        "currency": currency,
        "due_date": assignment.due_date.isoformat(),
        "face": format_minor_units(assignment.face_minor, currency),
        "paid": format_minor_units(assignment.paid_minor, currency),
        "diluted": format_minor_units(assignment.diluted_minor, currency),
        "owed": format_minor_units(_owed(assignment), currency),
    }


def _late_evidence(late: list[Assignment], today: date) -> dict[str, Any]:
    owed = [(_owed(a), a.advance.currency) for a in late]
    oldest = (today - late[0].due_date).days
    return {
        "count": len(late),
        "oldest_days_past_due": oldest,
        "owed": _totals(owed),
        "receivables": [
            _row(a) | {"days_past_due": (today - a.due_date).days} for a in late[:LISTED]
        ],
        "summary": f"{len(late)} financed receivable(s) past due and unpaid, the oldest by "
        f"{oldest} day(s): {_shown(owed)} still owed by their debtors.",
    }


def _short_evidence(short: list[Assignment]) -> dict[str, Any]:
    missing = [(_owed(a), a.advance.currency) for a in short]
    return {
        "count": len(short),
        "short": _totals(missing),
        "receivables": [_row(a) for a in short[:LISTED]],
        "summary": f"{len(short)} financed receivable(s) paid less than their debtors owe "
        f"(no credit note explains it): {_shown(missing)} short.",
    }
