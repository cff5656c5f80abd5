"""The models of the bank's controls over what moves risk: four-eyes proposals, bank-wide debtor
limits and duplicate-flag clearances. ``financing.models`` re-exports them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from ledger.models import Entry
from merchants.models import Merchant

_KINDS = [
    "facility_open",
    "facility_change",
    "debtor_limit",
    "blacklist_lift",
    "duplicate_clear",
    "suspense_allocate",
    "bank_account_change",
    "break_adjust",
]


class RiskChange(models.Model):
    """Four-eyes: a change that moves risk, proposed by one officer, applied when a different
    senior officer confirms it. The row is the audit of both decisions.

    ``target`` names what the change is about ("facility:12", "blacklisting:3", …); at most one
    proposal per target is open, so a senior never confirms one of two rival drafts.
    """

    class Kind(models.TextChoices):
        FACILITY_OPEN = "facility_open", "Open a facility"
        FACILITY_CHANGE = "facility_change", "Change a facility's terms"
        DEBTOR_LIMIT = "debtor_limit", "Set a bank-wide debtor limit"
        BLACKLIST_LIFT = "blacklist_lift", "Lift a blacklisting"
        DUPLICATE_CLEAR = "duplicate_clear", "Clear a duplicate-invoice flag"
        SUSPENSE_ALLOCATE = "suspense_allocate", "Allocate money held in suspense"
        BANK_ACCOUNT_CHANGE = "bank_account_change", "Change a merchant's bank account"
        BREAK_ADJUST = "break_adjust", "Post a journal adjustment resolving a break"

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed, awaiting a senior officer"
        CONFIRMED = "confirmed", "Confirmed"
        REJECTED = "rejected", "Rejected"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    target = models.CharField(max_length=200)
    before = models.JSONField(default=dict, help_text="What stood when it was proposed.")
    payload = models.JSONField(default=dict, help_text="What is proposed.")
    reason = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-proposed_at", "-id"]
        permissions = [("confirm_riskchange", "Can confirm or reject another officer's change")]
        constraints = [
            models.UniqueConstraint(
                fields=["target"],
                condition=Q(status="proposed"),
                name="riskchange_one_open_per_target",
            ),
            # Four eyes in the database too, as for advances: the decider is never the proposer.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("proposed_by")),
                name="riskchange_decider_not_proposer",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="proposed", decided_by__isnull=True, decided_at__isnull=True)
                    | Q(
                        status__in=["confirmed", "rejected"],
                        decided_by__isnull=False,
                        decided_at__isnull=False,
                    )
                ),
                name="riskchange_decision_consistent",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="riskchange_reason_given"),
            models.CheckConstraint(condition=Q(kind__in=_KINDS), name="riskchange_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.target}), {self.status}"


class DebtorLimit(models.Model):
    """The bank's limit on one debtor in one currency, across all merchants (concentration).

    Approvals lock the rows of their debtors, in id order, before they re-check the room, so
    two merchants' approvals against one debtor never jointly pass the limit.
    """

    currency = models.CharField(max_length=3)
    debtor_key = models.CharField(max_length=160)
    debtor_name = models.CharField(max_length=200)
    limit_minor = models.BigIntegerField()
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["currency", "debtor_key"], name="debtorlimit_one_per_debtor"
            ),
            models.CheckConstraint(
                condition=Q(limit_minor__gte=0), name="debtorlimit_limit_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.debtor_name} {self.currency} limit"


class DuplicateClearance(models.Model):
    """A senior officer's finding that a receivable flagged DUPLICATE_INVOICE is not one.

    Kept apart from the receivable, which is a projection a rebuild replaces; bound to the
    invoice entry that was looked at.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    invoice_ref = models.CharField(max_length=128)
    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="+")
    proposal = models.OneToOneField(RiskChange, on_delete=models.PROTECT, related_name="+")
    cleared_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "invoice_ref"], name="duplicateclearance_once_per_receivable"
            )
        ]

    def __str__(self) -> str:
        return f"{self.invoice_ref}: duplicate flag cleared"
