"""Template filters of the advances pages: an advance's and its invoices' status in words."""

from __future__ import annotations

from django import template

from portal.advances.words import ADVANCE_STATUS, RECEIVABLE_STATUS

register = template.Library()


@register.filter
def advance_status_words(status: str) -> str:
    return str(ADVANCE_STATUS.get(status, status))


@register.filter
def receivable_status_words(status: str) -> str:
    return str(RECEIVABLE_STATUS.get(status, status))
