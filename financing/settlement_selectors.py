"""Reads of settlement for the bank's officers: how an advance was repaid, what a merchant owes
on recourse, and how far behind the workers are. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Sum

from financing.books.models import Account
from financing.models import Advance, LineAllocation, Recourse, SettlementWork
from financing.settlement_books import chain_ref
from ledger.models import Entry
from ledger.money import parse_minor_units

LAG_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class ReserveRelease:
    """Reserve paid back to the merchant when a receivable closed, less recourse kept back."""

    invoice_ref: str
    amount_minor: int
    recourse_netted_minor: int
    released_at: datetime


@dataclass(frozen=True)
class RepaymentHistory:
    """Every payout line applied to an advance's receivables, in order, and its releases."""

    lines: tuple[LineAllocation, ...]
    releases: tuple[ReserveRelease, ...]


def repayment_history(*, advance: Advance) -> RepaymentHistory:
    """Read the waterfall of every line applied to ``advance``'s receivables, with the reserve
    released as each closed."""
    lines = (
        LineAllocation.objects.filter(assignment__advance=advance)
        .select_related("payout_entry", "assignment")
        .order_by("settled_at", "payout_entry_id", "line")
    )
    refs = {
        chain_ref(invoice_ref, advance.ref, "released"): invoice_ref
        for invoice_ref in advance.assignments.values_list("invoice_ref", flat=True)
    }
    released = Entry.objects.filter(
        chain_id=advance.merchant_id, type="reserve.released", external_ref__in=refs
    ).order_by("seq")
    releases = []
    for entry in released:
        data = orjson.loads(bytes(entry.body))["data"]
        releases.append(
            ReserveRelease(
                invoice_ref=refs[entry.external_ref],
                amount_minor=parse_minor_units(data["amount"], data["currency"]),
                recourse_netted_minor=parse_minor_units(
                    data["recourse_netted"], data["currency"], allow_zero=True
                ),
                released_at=entry.occurred_at,
            )
        )
    return RepaymentHistory(lines=tuple(lines), releases=tuple(releases))


@dataclass(frozen=True)
class RecourseBalance:
    """What a merchant was charged on recourse in one currency, and what it still owes."""

    currency: str
    raised_minor: int
    open_minor: int


def recourse_balances(*, merchant_id: int) -> list[RecourseBalance]:
    """Read the merchant's recourse per currency: raised in all, and open (its recourse account,
    less what was netted from releases and payouts since)."""
    raised = dict(
        Recourse.objects.filter(merchant_id=merchant_id)
        .values("currency")
        .annotate(total=Sum("amount_minor"))
        .values_list("currency", "total")
    )
    accounts = dict(
        Account.objects.filter(
            merchant_id=merchant_id, code__startswith="recourse_receivable:"
        ).values_list("currency", "balance_minor")
    )
    return [
        RecourseBalance(
            currency=currency,
            raised_minor=raised.get(currency, 0),
            open_minor=accounts.get(currency, 0),
        )
        for currency in sorted(raised.keys() | accounts.keys())
    ]


@dataclass(frozen=True)
class SettlementLag:
    """How far behind settlement is: work waiting, and payout entry → settled lately."""

    pending: int
    oldest_pending_at: datetime | None
    settled_recently: int
    median_lag: timedelta | None


def settlement_lag(*, now: datetime) -> SettlementLag:
    """Read the pending work and the median lag of payouts settled in the 24 hours to ``now``."""
    pending = SettlementWork.objects.filter(status=SettlementWork.Status.PENDING).aggregate(
        oldest=Min("created_at"), count=Count("id")
    )
    lag = ExpressionWrapper(F("done_at") - F("entry__recorded_at"), output_field=DurationField())
    done = SettlementWork.objects.filter(
        kind=SettlementWork.Kind.PAYOUT,
        status=SettlementWork.Status.DONE,
        done_at__gt=now - LAG_WINDOW,
        done_at__lte=now,
    ).annotate(lag=lag)
    settled = done.count()
    median = None
    if settled:
        # The middle one or two, sorted in the database: no need to read every lag.
        lags = done.order_by("lag").values_list("lag", flat=True)
        middle = list(lags[(settled - 1) // 2 : settled // 2 + 1])
        median = sum(middle, timedelta()) / len(middle)
    return SettlementLag(
        pending=pending["count"] or 0,
        oldest_pending_at=pending["oldest"],
        settled_recently=settled,
        median_lag=median,
    )
