"""Credit lines: a merchant's facility in one currency and the audit trail of its changes.

The facility's limit holds in the database: commitments (advances requested, approved or
outstanding) never exceed it, and a merchant has one active facility per currency.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from financing.controls import RiskChange
from financing.pricing import DayCount
from merchants.models import Merchant


class Facility(models.Model):
    """A credit line for one merchant in one currency. Rates are basis points (1800 = 18%)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="facilities")
    currency = models.CharField(max_length=3)
    limit_minor = models.BigIntegerField()
    committed_minor = models.BigIntegerField(
        default=0, help_text="Advance amounts requested, approved or outstanding."
    )
    advance_rate_bp = models.PositiveIntegerField(help_text="Share of face value advanced.")
    annual_rate_bp = models.PositiveIntegerField(help_text="Annual discount rate.")
    day_count = models.CharField(max_length=8, choices=DayCount.choices, default=DayCount.ACT_360)
    max_tenor_days = models.PositiveIntegerField(default=120)
    min_days_to_due = models.PositiveIntegerField(
        default=7, help_text="A receivable due sooner than this (at least 1 day) is not financed."
    )
    debtor_cap_bp = models.PositiveIntegerField(
        default=5000, help_text="Most of the limit one debtor may account for."
    )
    late_fee_rate_bp = models.PositiveIntegerField(default=2400)
    late_fee_cap_bp = models.PositiveIntegerField(
        default=1000,
        help_text="Most late fees a receivable may carry, as a share of its principal (advance).",
    )
    non_accrual_after_days = models.PositiveIntegerField(
        default=90, help_text="Days past due after which a receivable accrues no more late fees."
    )
    blacklist_after_days = models.PositiveIntegerField(default=30)
    checker_threshold_minor = models.BigIntegerField(
        default=500_000, help_text="Advances above this need a second officer to authorize."
    )
    active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1, help_text="Raised by every change.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "facilities"
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "currency"],
                condition=Q(active=True),
                name="facility_one_active_per_currency",
            ),
            models.CheckConstraint(condition=Q(limit_minor__gte=0), name="facility_limit_positive"),
            models.CheckConstraint(
                condition=Q(committed_minor__gte=0, committed_minor__lte=F("limit_minor")),
                name="facility_commitments_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(advance_rate_bp__gt=0, advance_rate_bp__lte=10_000),
                name="facility_advance_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(annual_rate_bp__lte=100_000, late_fee_rate_bp__lte=100_000),
                name="facility_rates_range",
            ),
            models.CheckConstraint(
                condition=Q(debtor_cap_bp__gt=0, debtor_cap_bp__lte=10_000),
                name="facility_debtor_cap_range",
            ),
            models.CheckConstraint(
                condition=Q(max_tenor_days__gte=1, min_days_to_due__gte=1),
                name="facility_days_positive",
            ),
            models.CheckConstraint(
                condition=Q(day_count__in=DayCount.values), name="facility_day_count_valid"
            ),
            models.CheckConstraint(
                condition=Q(late_fee_cap_bp__lte=10_000, non_accrual_after_days__gte=1),
                name="facility_late_fee_cap_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant.legal_name} {self.currency} facility"


class FacilityChange(models.Model):
    """The audit trail of a facility: who changed what, from what, to what, and why."""

    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="changes")
    officer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    changed_at = models.DateTimeField()
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    reason = models.TextField()
    proposal = models.ForeignKey(
        RiskChange,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The confirmed proposal this change carried out (empty before four-eyes).",
    )

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"change of {self.facility} at {self.changed_at:%Y-%m-%d %H:%M}"
