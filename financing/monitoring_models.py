"""Monitoring after funding: the early-warning list. ``financing.models`` re-exports it.

Banks watch how a borrower fares once the money is out. A daily task writes one row per
merchant, kind of warning and day, with the figures that raised it; the unique key makes a
re-run the same day a no-op.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from merchants.models import Merchant


class EarlyWarning(models.Model):
    """A merchant with money outstanding whose evidence turned for the worse, on one day."""

    class Kind(models.TextChoices):
        ORDERS_DROP = "orders_drop", "Orders fell"
        DELIVERIES_DROP = "deliveries_drop", "Deliveries fell"
        RETURNS_SPIKE = "returns_spike", "Returns spiked"
        CREDIT_NOTES_SPIKE = "credit_notes_spike", "Credit notes spiked"
        PAYOUTS_LATE = "payouts_late", "Financed receivables past due, unpaid"
        PAYOUTS_SHORT = "payouts_short", "Financed receivables paid short"

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    observed_on = models.DateField(help_text="The bank's business day of the run that saw it.")
    evidence = models.JSONField(
        default=dict, help_text="The figures that raised it, and a sentence saying so."
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-observed_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "kind", "observed_on"], name="earlywarning_once_per_day"
            ),
            models.CheckConstraint(
                condition=Q(
                    kind__in=[
                        "orders_drop",
                        "deliveries_drop",
                        "returns_spike",
                        "credit_notes_spike",
                        "payouts_late",
                        "payouts_short",
                    ]
                ),
                name="earlywarning_kind_valid",
            ),
        ]
        indexes = [models.Index(fields=["observed_on"], name="earlywarning_observed_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.observed_on:%Y-%m-%d})"
