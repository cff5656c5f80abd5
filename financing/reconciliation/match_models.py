"""The matching engine's rules and the matches they make. ``financing.models`` re-exports them.

Rules are rows, edited by senior officers in the admin, evaluated in ``order`` (then id); the
engine's semantics are in ``financing.reconciliation.matching``. A match records the rule that
made it; the items it joins are ``MatchItem`` rows, and an item (a statement entry, a payment,
a payout) is in at most one live (suggested or confirmed) match, which the database enforces.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from financing.reconciliation.models import ReconJob
from financing.reconciliation.payments import Payment, StatementEntry
from ledger.models import Payout

RULE_KINDS = ["one_to_one", "one_to_many", "many_to_one"]
RULE_SOURCES = ["debit_payments", "credit_payouts"]
MATCH_STATUSES = ["suggested", "confirmed", "rejected"]


class MatchRule(models.Model):
    """One auto-match rule: which items, compared on which keys, within which tolerances."""

    class Kind(models.TextChoices):
        ONE_TO_ONE = "one_to_one", "One to one"
        ONE_TO_MANY = "one_to_many", "One entry to many items"
        MANY_TO_ONE = "many_to_one", "Many entries to one item"

    class Source(models.TextChoices):
        DEBIT_PAYMENTS = "debit_payments", "Statement debits against payments out"
        CREDIT_PAYOUTS = "credit_payouts", "Statement credits against payouts"

    name = models.CharField(max_length=100, unique=True)
    order = models.PositiveIntegerField(
        unique=True, help_text="Rules run in this order, lowest first: the most precise first."
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    keys = models.JSONField(
        default=list,
        help_text='Fields that must be equal, of "end_to_end_id", "reference", "amount", '
        '"currency". With "amount" the amount tolerance is ignored.',
    )
    tolerance_minor = models.PositiveBigIntegerField(
        default=0, help_text="Amount tolerance in minor units (cents)."
    )
    tolerance_bps = models.PositiveIntegerField(
        default=0, help_text="Amount tolerance in basis points of the expected amount."
    )
    days_before = models.PositiveSmallIntegerField(
        default=0, help_text="The bank's value date may be this many days before the item's date."
    )
    days_after = models.PositiveSmallIntegerField(
        default=0, help_text="… and this many days after it."
    )
    auto_confirm = models.BooleanField(
        default=True,
        help_text="Exact matches are confirmed at once; off: every match is only suggested.",
    )
    active = models.BooleanField(default=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=RULE_KINDS), name="matchrule_kind_valid"),
            models.CheckConstraint(
                condition=Q(source__in=RULE_SOURCES), name="matchrule_source_valid"
            ),
            models.CheckConstraint(
                condition=Q(tolerance_bps__lte=10_000), name="matchrule_bps_at_most_all"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order}. {self.name}"


class Match(models.Model):
    """Statement entries matched to payments or payouts by one rule.

    Exact matches under an auto-confirming rule are confirmed by the engine (no officer);
    within tolerance, the match is suggested with ``adjustment_minor`` (entries minus items)
    until an officer confirms or rejects it. Confirming posts the clearing journal entry, keyed
    ``match:<pk>``, once.
    """

    class Status(models.TextChoices):
        SUGGESTED = "suggested", "Suggested"
        CONFIRMED = "confirmed", "Confirmed"
        REJECTED = "rejected", "Rejected"

    rule = models.ForeignKey(MatchRule, on_delete=models.PROTECT, related_name="matches")
    job = models.ForeignKey(
        ReconJob, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    source = models.CharField(max_length=16, choices=MatchRule.Source.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField(help_text="The statement entries' total.")
    expected_minor = models.BigIntegerField(help_text="The payments' or payouts' total.")
    adjustment_minor = models.BigIntegerField(
        default=0, help_text="Entries minus items: what the books must absorb to clear."
    )
    found_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the engine confirmed an exact match.",
    )
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-found_at", "-id"]
        verbose_name_plural = "matches"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=MATCH_STATUSES), name="match_status_valid"
            ),
            models.CheckConstraint(condition=Q(source__in=RULE_SOURCES), name="match_source_valid"),
            models.CheckConstraint(
                condition=Q(adjustment_minor=models.F("amount_minor") - models.F("expected_minor")),
                name="match_adjustment_is_difference",
            ),
            models.CheckConstraint(
                condition=Q(status="suggested", confirmed_at__isnull=True, rejected_at__isnull=True)
                | Q(status="confirmed", confirmed_at__isnull=False, rejected_at__isnull=True)
                | Q(
                    status="rejected",
                    confirmed_at__isnull=True,
                    rejected_at__isnull=False,
                    rejected_by__isnull=False,
                ),
                name="match_decision_consistent",
            ),
            # Money written off (or found) is an officer's decision, never the engine's.
            models.CheckConstraint(
                condition=~Q(status="confirmed")
                | Q(adjustment_minor=0)
                | Q(confirmed_by__isnull=False),
                name="match_adjustment_confirmed_by_officer",
            ),
        ]

    def __str__(self) -> str:
        return f"match {self.pk} ({self.status}) by {self.rule.name}"


class MatchItem(models.Model):
    """One statement entry, payment or payout joined by a match.

    ``live`` is true while the match is suggested or confirmed, and turns false in the
    transaction that rejects it; an item is in at most one live match (partial unique indexes),
    so no entry clears two payments and no payout is cleared twice, whatever runs at once.
    """

    match = models.ForeignKey(Match, on_delete=models.PROTECT, related_name="items")
    statement_entry = models.ForeignKey(
        StatementEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    payout = models.ForeignKey(
        Payout, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    amount_minor = models.BigIntegerField()
    live = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    statement_entry__isnull=False, payment__isnull=True, payout__isnull=True
                )
                | Q(statement_entry__isnull=True, payment__isnull=False, payout__isnull=True)
                | Q(statement_entry__isnull=True, payment__isnull=True, payout__isnull=False),
                name="matchitem_exactly_one_item",
            ),
            models.UniqueConstraint(
                fields=["statement_entry"], condition=Q(live=True), name="matchitem_entry_once"
            ),
            models.UniqueConstraint(
                fields=["payment"], condition=Q(live=True), name="matchitem_payment_once"
            ),
            models.UniqueConstraint(
                fields=["payout"], condition=Q(live=True), name="matchitem_payout_once"
            ),
        ]

    def __str__(self) -> str:
        item = self.statement_entry or self.payment or self.payout
        return f"{item} in match {self.match_id}"
