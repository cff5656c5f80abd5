"""Blacklisting, and the merchant as the credit officer reads it.

One active blacklisting per merchant, lifted only by an officer with a reason: both held by
constraints.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from financing.controls import RiskChange
from merchants.models import Merchant


class Blacklisting(models.Model):
    """No new advances for the merchant while active; only an officer lifts it, with a reason."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="blacklistings")
    reason = models.TextField()
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the overdue sweep blacklisted the merchant.",
    )
    advance = models.ForeignKey(
        "financing.Advance", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lift_reason = models.TextField(blank=True)
    lift_change = models.ForeignKey(
        RiskChange, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"],
                condition=Q(lifted_at__isnull=True),
                name="blacklisting_one_active_per_merchant",
            ),
            models.CheckConstraint(
                condition=Q(lifted_at__isnull=True)
                | (Q(lifted_by__isnull=False) & ~Q(lift_reason="")),
                name="blacklisting_lift_needs_officer_and_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant} blacklisted {self.created_at:%Y-%m-%d}"


class MerchantFile(Merchant):
    """A merchant as the credit officer reads it: facility, exposure, advances, risk, chain."""

    class Meta:
        proxy = True
        verbose_name = "merchant credit file"
