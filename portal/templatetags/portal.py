"""Template filters of the portal: money for people, the chain's event types in words."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _

from ledger.money import Money

register = template.Library()

EVENT_WORDS = {
    "order.placed": _("Order placed"),
    "order.cancelled": _("Order cancelled"),
    "invoice.issued": _("Invoice issued"),
    "invoice.credited": _("Credit note"),
    "invoice.linked": _("Invoice linked to its order"),
    "shipment.dispatched": _("Shipment dispatched"),
    "shipment.delivered": _("Delivered"),
    "shipment.returned": _("Goods returned"),
    "payout.settled": _("Payout by the marketplace"),
    "receivable.assigned": _("Financed: assigned to the bank"),
    "receivable.settled": _("Payment applied (settlement)"),
    "reserve.released": _("Reserve paid back to you"),
    "recourse.raised": _("Recourse: you owe the bank"),
    "advance.disbursed": _("Advance paid out"),
    "advance.repaid": _("Advance repaid"),
    "advance.overdue": _("Advance overdue"),
}

STATUS_WORDS = {
    "open": _("Open"),
    "requested": _("In a request"),
    "financed": _("Financed"),
    "paid": _("Paid"),
    "credited": _("Credited"),
}


ROLE_WORDS = {
    "owner": _("Owner"),
    "finance": _("Finance"),
    "viewer": _("Viewer"),
}


@register.filter
def money(minor: int | None, currency: str) -> str:
    """``{{ row.available_minor|money:row.currency }}`` → "1,234.50 EUR"."""
    return Money.display(minor, currency)


@register.filter
def event_words(event_type: str) -> str:
    return str(EVENT_WORDS.get(event_type, event_type))


@register.filter
def status_words(status: str) -> str:
    return str(STATUS_WORDS.get(status, status))


@register.filter
def role_words(role: str) -> str:
    return str(ROLE_WORDS.get(role, role))
