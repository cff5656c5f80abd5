"""Reads over reconciliation: open breaks by age and by kind (officer home, /metrics)."""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import Count, Q

from financing.models import Break
from financing.reconciliation.breaks import AGE_BUCKETS


def open_breaks_by_age(*, today: date) -> dict[str, int]:
    """Open breaks per age bucket (days since found, as of ``today``), in one query."""
    counts = {}
    for label, low, high in AGE_BUCKETS:
        bucket = Q(found_at__date__lte=today - timedelta(days=low))
        if high is not None:
            bucket &= Q(found_at__date__gte=today - timedelta(days=high))
        counts[label] = Count("id", filter=bucket)
    return Break.objects.filter(status=Break.Status.OPEN).aggregate(**counts)


def open_breaks_by_kind() -> dict[str, int]:
    """Open breaks per kind, every kind named (zero when none is open)."""
    found = dict(
        Break.objects.filter(status=Break.Status.OPEN)
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    return {kind: found.get(kind, 0) for kind in Break.Kind.values}
