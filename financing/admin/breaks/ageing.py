"""Ageing of the break queue: how long a break has waited, in the buckets a reconciliation team
reports (``financing.reconciliation.breaks.AGE_BUCKETS``): the queue's age column and filter.
The officer's home counts open breaks by the same buckets (``financing.admin.home``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from financing.models import Break
from financing.reconciliation.breaks import AGE_BUCKETS, age_bucket


def break_age(brk: Break) -> str:
    """The bucket of ``brk`` as of today."""
    return age_bucket(brk.found_at.date(), timezone.now().date())


class AgeFilter(admin.SimpleListFilter):
    """How long a break has waited, in the buckets the officer's home shows."""

    title = "age"
    parameter_name = "age"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(label, label) for label, _low, _high in AGE_BUCKETS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return age_filtered(queryset, self.value())


def age_filtered(queryset: QuerySet[Any], label: str | None) -> QuerySet[Any]:
    """The breaks of ``queryset`` in the age bucket ``label`` as of today (all without one)."""
    for name, low, high in AGE_BUCKETS:
        if name == label:
            today = timezone.now().date()
            rows = queryset.filter(found_at__date__lte=today - timedelta(days=low))
            if high is not None:
                rows = rows.filter(found_at__date__gte=today - timedelta(days=high))
            return rows
    return queryset
