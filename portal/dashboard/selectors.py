"""The dashboard's figures for one merchant: what it can get now, what it owes, what is held.

Every read is scoped by the merchant passed in (the portal's tenant); ``today`` comes from
the view. Figures are per currency: a merchant with an EUR and a PLN facility sees both.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from financing.accounts import recourse_owed
from financing.books.models import Account
from financing.eligibility import open_verdicts
from financing.models import (
    Advance,
    Assignment,
    Blacklisting,
    EarlyWarning,
    Facility,
    LineAllocation,
    SuspenseItem,
)
from financing.pricing import advance_amount
from financing.selectors import early_warnings_active
from merchants.models import Merchant

DUE_SOON_DAYS = 30
CHART_DAYS = 90
CHART_BUCKET_DAYS = 7
RESERVE_PAYABLE = "merchant_reserve_payable"


@dataclass
class CurrencyFigures:
    currency: str
    available_minor: int = 0
    eligible_count: int = 0
    room_minor: int | None = None  # None: no active facility in this currency
    limit_minor: int = 0
    outstanding_minor: int = 0
    outstanding_advances: int = 0
    due_soon_minor: int = 0
    reserve_minor: int = 0
    recourse_minor: int = 0
    suspense_minor: int = 0
    suspense_count: int = 0


@dataclass(frozen=True)
class Alert:
    level: str  # "danger", "warning" or "info"
    message: str
    advance_ref: str = ""  # the advance it concerns, which the alert links to


@dataclass(frozen=True)
class Chart:
    currency: str
    labels: list[str]
    funded_minor: list[int]
    repaid_minor: list[int]


@dataclass(frozen=True)
class Dashboard:
    figures: list[CurrencyFigures]
    alerts: list[Alert]
    charts: list[Chart] = field(default_factory=list)


def dashboard_read(*, merchant: Merchant, today: date) -> Dashboard:
    """Read the merchant's dashboard: figures per currency, alerts, funded vs repaid by week."""
    figures = dashboard_figures(merchant=merchant, today=today)
    return Dashboard(
        figures=figures,
        alerts=dashboard_alerts(merchant=merchant, today=today),
        charts=[
            funded_vs_repaid(merchant=merchant, currency=f.currency, today=today) for f in figures
        ],
    )


def dashboard_figures(*, merchant: Merchant, today: date) -> list[CurrencyFigures]:
    """Return the merchant's figures per currency, currencies in alphabetical order.

    Available now: the advance on every eligible receivable, in total no more than the
    facility's room. Outstanding: principal not yet repaid on disbursed or overdue advances;
    due soon: the part of it on receivables due within 30 days. Reserve, recourse and suspense
    are the balances of the merchant's accounts in the books.
    """
    by_currency: dict[str, CurrencyFigures] = {}

    def of(currency: str) -> CurrencyFigures:
        return by_currency.setdefault(currency, CurrencyFigures(currency))

    facilities = {f.currency: f for f in Facility.objects.filter(merchant=merchant, active=True)}
    for currency, line in facilities.items():
        of(currency).room_minor = max(line.limit_minor - line.committed_minor, 0)
        of(currency).limit_minor = line.limit_minor
    for verdict in open_verdicts(merchant, today):  # only eligible ones count
        facility = facilities.get(verdict.currency)
        if verdict.eligible and facility is not None:
            row = of(verdict.currency)
            row.available_minor += advance_amount(verdict.face_minor, facility.advance_rate_bp)
            row.eligible_count += 1
    for row in by_currency.values():
        row.available_minor = min(row.available_minor, row.room_minor or 0)

    outstanding = Assignment.objects.filter(
        merchant=merchant,
        status=Assignment.Status.ASSIGNED,
        advance__status__in=Advance.OUTSTANDING,
    )
    unpaid = F("advance_minor") - F("principal_repaid_minor")
    for currency, total, advances in outstanding.values_list("advance__currency").annotate(
        total=Sum(unpaid), advances=Count("advance", distinct=True)
    ):
        of(currency).outstanding_minor = total or 0
        of(currency).outstanding_advances = advances
    soon = outstanding.filter(due_date__lte=today + timedelta(days=DUE_SOON_DAYS))
    for currency, total in soon.values_list("advance__currency").annotate(total=Sum(unpaid)):
        of(currency).due_soon_minor = total or 0

    # A liability is credit-negative in the books; the merchant reads what is held for it.
    reserves = Account.objects.filter(
        merchant_id=merchant.pk, code__startswith=f"{RESERVE_PAYABLE}:"
    ).values_list("currency", "balance_minor")
    for currency, balance in reserves:
        if balance:
            of(currency).reserve_minor = -balance
    for currency, owed in recourse_owed(merchant).items():
        of(currency).recourse_minor = owed
    suspense = SuspenseItem.objects.filter(merchant=merchant, status=SuspenseItem.Status.OPEN)
    for currency, total, items in suspense.values_list("currency").annotate(
        total=Sum("amount_minor"), items=Count("id")
    ):
        of(currency).suspense_minor = total or 0
        of(currency).suspense_count = items
    return [by_currency[c] for c in sorted(by_currency)]


def dashboard_alerts(*, merchant: Merchant, today: date) -> list[Alert]:
    """Return what needs the merchant's attention, the most serious first."""
    alerts: list[Alert] = []
    if Blacklisting.objects.filter(merchant=merchant, lifted_at__isnull=True).exists():
        alerts.append(
            Alert(
                "danger",
                _(
                    "New advances are paused: a financed invoice went unpaid for too long. "
                    "The bank lifts the pause once it is sorted out."
                ),
            )
        )
    overdue = Advance.objects.filter(merchant=merchant, status=Advance.Status.OVERDUE).count()
    if overdue:
        alerts.append(
            Alert(
                "danger",
                ngettext(
                    "%(count)d advance is overdue: its buyers have not paid by the due date.",
                    "%(count)d advances are overdue: their buyers have not paid by the due date.",
                    overdue,
                )
                % {"count": overdue},
            )
        )
    requotes = list(
        Advance.objects.filter(merchant=merchant, status=Advance.Status.REQUOTE).values_list(
            "ref", flat=True
        )
    )
    for ref in requotes:
        alerts.append(
            Alert(
                "warning",
                _("The bank offers a new price for advance %(ref)s: accept or decline it.")
                % {"ref": ref},
                advance_ref=ref,
            )
        )
    newest: dict[str, EarlyWarning] = {}
    for warning in early_warnings_active(today=today).filter(merchant=merchant):  # newest first
        newest.setdefault(warning.kind, warning)
    for kind in sorted(newest):
        alerts.append(Alert("warning", _early_warning_message(newest[kind])))
    suspense = SuspenseItem.objects.filter(
        merchant=merchant, status=SuspenseItem.Status.OPEN
    ).count()
    if suspense:
        alerts.append(
            Alert(
                "info",
                ngettext(
                    "%(count)d payment could not be matched to an invoice yet; the bank is "
                    "looking into it.",
                    "%(count)d payments could not be matched to an invoice yet; the bank is "
                    "looking into them.",
                    suspense,
                )
                % {"count": suspense},
            )
        )
    return alerts


EARLY_WARNINGS = {
    "orders_drop": gettext_lazy("Your orders fell sharply this month; the bank may ask why."),
    "deliveries_drop": gettext_lazy(
        "Your deliveries fell sharply this month; the bank may ask why."
    ),
    "returns_spike": gettext_lazy("Returns rose sharply this month; the bank may ask why."),
    "credit_notes_spike": gettext_lazy(
        "Credit notes rose sharply this month; the bank may ask why."
    ),
    "payouts_late": gettext_lazy("Some financed invoices are past due and unpaid."),
    "payouts_short": gettext_lazy("Some financed invoices were paid short."),
}


def _early_warning_message(warning: EarlyWarning) -> str:
    """The warning's sentence; for financed invoices paid late or short, which ones (as the
    bank's run saw them, the first twenty by due date, and how many more)."""
    message = str(EARLY_WARNINGS.get(warning.kind) or _("The bank noticed a change in your trade."))
    refs = [str(row["invoice_ref"]) for row in warning.evidence.get("receivables", [])]
    if not refs:
        return message
    named = ", ".join(refs)
    total = max(int(warning.evidence.get("count", 0)), len(refs))
    if total > len(refs):
        more = total - len(refs)
        and_more = ngettext("%(refs)s and %(count)d more", "%(refs)s and %(count)d more", more)
        named = and_more % {"refs": named, "count": more}
    sentence = ngettext("%(message)s Invoice: %(refs)s.", "%(message)s Invoices: %(refs)s.", total)
    return sentence % {"message": message, "refs": named}


def funded_vs_repaid(*, merchant: Merchant, currency: str, today: date) -> Chart:
    """Money advanced and principal repaid over the last 90 days, by week, oldest first."""
    buckets = CHART_DAYS // CHART_BUCKET_DAYS + 1
    first = today - timedelta(days=buckets * CHART_BUCKET_DAYS - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    funded: dict[int, int] = defaultdict(int)
    repaid: dict[int, int] = defaultdict(int)

    def bucket(at: datetime) -> int:
        return min((timezone.localdate(at) - first).days // CHART_BUCKET_DAYS, buckets - 1)

    for at, amount in Advance.objects.filter(
        merchant=merchant, currency=currency, disbursed_at__gte=since
    ).values_list("disbursed_at", "advance_minor"):
        if at is not None:
            funded[bucket(at)] += amount
    for at, amount in LineAllocation.objects.filter(
        merchant=merchant, currency=currency, settled_at__gte=since, to_principal_minor__gt=0
    ).values_list("settled_at", "to_principal_minor"):
        repaid[bucket(at)] += amount
    starts = [first + timedelta(days=i * CHART_BUCKET_DAYS) for i in range(buckets)]
    return Chart(
        currency=currency,
        labels=[start.isoformat() for start in starts],
        funded_minor=[funded[i] for i in range(buckets)],
        repaid_minor=[repaid[i] for i in range(buckets)],
    )
