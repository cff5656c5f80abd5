"""How the financing admin writes rates, term changes and refusals (amounts: `Money.display`)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from financing.exceptions import AdvanceRefused, FinancingError
from financing.services.facilities import FACILITY_TERMS
from ledger.money import Money
from merchants.models import Merchant

MONEY_TERMS = ("limit_minor", "checker_threshold_minor")
_BASIS_POINT_TERMS = (
    "advance_rate_bp",
    "annual_rate_bp",
    "debtor_cap_bp",
    "late_fee_rate_bp",
    "late_fee_cap_bp",
)


def with_hover(shown: str, whole: str) -> SafeString:
    """A short form in a list cell, the whole text on hover (``admin/compact_change_list.html``
    keeps a cell's own hover text when it cuts the cell)."""
    return format_html('<span title="{}">{}</span>', whole, shown)


def merchant_cell(merchant: Merchant) -> SafeString:
    """A list's merchant column: the legal name, with its public id too on hover."""
    return with_hover(merchant.legal_name, str(merchant))


def percent_of_bp(bp: int) -> str:
    return f"{Decimal(bp) / 100:.2f} %"


def refusal(exc: FinancingError) -> str:
    """The service's sentence, and for a refused advance each invoice's reasons too."""
    if isinstance(exc, AdvanceRefused) and exc.reasons:
        detail = "; ".join(
            f"{ref}: " + ", ".join(f"{code} ({message})" for code, message in pairs)
            for ref, pairs in exc.reasons.items()
        )
        return f"{exc.message} {detail}"
    return exc.message


def diff_html(before: Mapping[str, Any], after: Mapping[str, Any], currency: str) -> SafeString:
    """The facility terms that differ between ``before`` and ``after``, as a list."""

    def shown(name: str, value: Any) -> str:
        if value is None:
            return "—"
        if name in MONEY_TERMS and isinstance(value, int):
            return Money.display(value, currency)
        if name in _BASIS_POINT_TERMS and isinstance(value, int):
            return f"{percent_of_bp(value)} ({value} bp)"
        return str(value)

    others = sorted((set(before) | set(after)) - set(FACILITY_TERMS))
    names = [n for n in (*FACILITY_TERMS, *others) if before.get(n) != after.get(n)]
    if not names:
        return format_html("{}", "no term changed")
    verb = "opened with" if not before else ""
    return format_html(
        "{}<ul class='facility-diff'>{}</ul>",
        verb,
        format_html_join(
            "",
            "<li><b>{}</b>: {} → {}</li>",
            ((n, shown(n, before.get(n)), shown(n, after.get(n))) for n in names),
        ),
    )
