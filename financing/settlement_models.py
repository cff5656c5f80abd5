"""The models of settlement: the work outbox, each payout line's allocation, suspense, recourse
and dead letters. ``financing.models`` re-exports them.

Exactly once lives here: one outbox row per ledger entry that moves money, one allocation per
(payout entry, line), one recourse per (source entry, receivable); the settlement service
claims a work row with a conditional update in the transaction that writes its effects.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from ledger.models import Entry
from merchants.models import Merchant


class SettlementWork(models.Model):
    """The outbox: a ledger entry whose money effects a worker still has to apply.

    Written in the append transaction (by financing's projector), enqueued once it commits,
    re-sent by the sweep while pending, claimed (pending → done) in the transaction that applies
    it. A worker that dies mid-way rolls its claim back with its effects.
    """

    class Kind(models.TextChoices):
        PAYOUT = "payout", "Payout to settle"
        DILUTION = "dilution", "Dilution to apply (credit note, return, cancellation)"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        DEAD = "dead", "Dead-lettered"

    entry = models.OneToOneField(Entry, on_delete=models.PROTECT, related_name="+")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    enqueued_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["payout", "dilution"]), name="settlementwork_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="done", done_at__isnull=False)
                | Q(status__in=["pending", "dead"], done_at__isnull=True),
                name="settlementwork_done_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending"),
                name="settlementwork_pending_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} work for entry {self.entry_id}: {self.status}"


class LineAllocation(models.Model):
    """How one payout line was applied: the waterfall's split, once per (payout entry, line).

    The unique key is the guard of last resort: whatever runs twice, a line is applied once.
    """

    class Target(models.TextChoices):
        FINANCED = "financed", "A receivable assigned to the bank"
        MERCHANT = "merchant", "An unfinanced receivable: passed to the merchant"
        SUSPENSE = "suspense", "Nothing to apply it to: held in suspense"
        EVIDENCE = "evidence", "Paid to the merchant directly (no facility): evidence only"

    payout_entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="+")
    line = models.PositiveIntegerField(help_text="The line's index in the payout (0-based).")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    invoice_ref = models.CharField(max_length=128, blank=True)
    target = models.CharField(max_length=16, choices=Target.choices)
    assignment = models.ForeignKey(
        "financing.Assignment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="allocations",
    )
    amount_minor = models.BigIntegerField()
    to_late_fees_minor = models.BigIntegerField(default=0)
    to_principal_minor = models.BigIntegerField(default=0)
    to_merchant_minor = models.BigIntegerField(default=0)
    recourse_netted_minor = models.BigIntegerField(default=0)
    to_suspense_minor = models.BigIntegerField(default=0)
    settled_at = models.DateTimeField()

    class Meta:
        ordering = ["payout_entry_id", "line"]
        constraints = [
            models.UniqueConstraint(
                fields=["payout_entry", "line"], name="lineallocation_once_per_line"
            ),
            # The allocations of a line sum to it exactly, none negative.
            models.CheckConstraint(
                condition=Q(
                    amount_minor__gt=0,
                    to_late_fees_minor__gte=0,
                    to_principal_minor__gte=0,
                    to_merchant_minor__gte=0,
                    to_suspense_minor__gte=0,
                    recourse_netted_minor__gte=0,
                    recourse_netted_minor__lte=F("to_merchant_minor"),
                    amount_minor=F("to_late_fees_minor")
                    + F("to_principal_minor")
                    + F("to_merchant_minor")
                    + F("to_suspense_minor"),
                ),
                name="lineallocation_sums_to_line",
            ),
            models.CheckConstraint(
                condition=Q(target="financed", assignment__isnull=False)
                | (
                    Q(target__in=["merchant", "suspense", "evidence"])
                    & Q(assignment__isnull=True, to_late_fees_minor=0, to_principal_minor=0)
                ),
                name="lineallocation_target_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"line {self.line} of entry {self.payout_entry_id}"


class SuspenseItem(models.Model):
    """Money the bank received that nobody has allocated: officers allocate it, four-eyes."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ALLOCATED = "allocated", "Allocated"

    ref = models.CharField(max_length=64, unique=True)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    reason = models.CharField(max_length=300)
    payout_entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="+")
    line = models.IntegerField(null=True, blank=True, help_text="Empty: not a line's money.")
    invoice_ref = models.CharField(max_length=128, blank=True, help_text="What the line named.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField()
    allocated_at = models.DateTimeField(null=True, blank=True)
    allocated_to = models.CharField(
        max_length=160, blank=True, help_text="Invoice ref, or 'merchant' for a pass-through."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0), name="suspense_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(status="open", allocated_at__isnull=True)
                | Q(status="allocated", allocated_at__isnull=False),
                name="suspense_allocation_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.ref


class Recourse(models.Model):
    """An amount the merchant owes the bank on a receivable: dilution after funding, or late fees
    its reserve could not cover. Netted from its later reserve releases and payouts; the open
    balance is the merchant's recourse account in the books."""

    class Reason(models.TextChoices):
        CREDIT_NOTE = "credit_note", "Credit note after funding"
        RETURN = "return", "Goods returned after funding"
        CANCELLATION = "cancellation", "Order cancelled after funding"
        LATE_FEES = "late_fees", "Late fees the reserve did not cover"

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    assignment = models.ForeignKey(
        "financing.Assignment", on_delete=models.PROTECT, related_name="recourses"
    )
    source_entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    raised_at = models.DateTimeField()

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_entry", "assignment", "reason"], name="recourse_once_per_source"
            ),
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0), name="recourse_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"recourse {self.amount_minor} on {self.assignment_id}"


class DeadLetter(models.Model):
    """A task that kept failing: what it was, why, and whether an officer re-ran it."""

    task_name = models.CharField(max_length=200)
    task_kwargs = models.JSONField(default=dict)
    work = models.ForeignKey(
        SettlementWork,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="dead_letters",
        help_text="The settlement work it was doing, set back to pending by a re-run.",
    )
    error = models.TextField()
    attempts = models.PositiveIntegerField()
    failed_at = models.DateTimeField()
    rerun_at = models.DateTimeField(null=True, blank=True)
    rerun_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-failed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rerun_at__isnull=True, rerun_by__isnull=True)
                | Q(rerun_at__isnull=False, rerun_by__isnull=False),
                name="deadletter_rerun_by_officer",
            )
        ]

    def __str__(self) -> str:
        return f"{self.task_name} failed {self.failed_at:%Y-%m-%d %H:%M}"
