"""The shared models of reconciliation: a job that reads one uploaded file, and the breaks it
finds. ``financing.models`` re-exports them.

A job is one file, identified by its SHA-256 per kind: uploading the same file again returns
the same job and changes nothing. A break is unique per (job kind, key) where the key names the
line or object it is about, so a re-run finds the same breaks instead of adding new ones.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from merchants.models import Marketplace, Merchant


class ReconJob(models.Model):
    """One uploaded file being read and matched, with its progress for the admin and the API."""

    class Kind(models.TextChoices):
        SETTLEMENT_REPORT = "settlement_report", "Marketplace settlement report"
        BANK_STATEMENT = "bank_statement", "Bank statement (camt.053 / camt.054)"
        PAYMENT_STATUS = "payment_status", "Payment status report (pain.002)"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        REFUSED = "refused", "Refused"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    file_format = models.CharField(
        max_length=64, blank=True, help_text="As detected: 'camt.053.001.02', 'amazon-v2', …"
    )
    marketplace = models.ForeignKey(
        Marketplace, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lines_total = models.PositiveIntegerField(null=True, blank=True)
    lines_done = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    breaks_found = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    refusal = models.TextField(blank=True, help_text="Why the file was refused, precisely.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "file_sha256"], name="reconjob_file_once"),
            models.CheckConstraint(
                condition=Q(kind__in=["settlement_report", "bank_statement", "payment_status"]),
                name="reconjob_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "done", "refused"]),
                name="reconjob_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(lines_total__isnull=True) | Q(lines_done__lte=F("lines_total")),
                name="reconjob_progress_within_total",
            ),
            models.CheckConstraint(
                condition=~Q(status="refused") | ~Q(refusal=""),
                name="reconjob_refusal_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.file_name} ({self.status})"


class Break(models.Model):
    """A difference between two records of money, for an officer to resolve with a reason."""

    class Kind(models.TextChoices):
        MISSING_IN_LEDGER = "missing_in_ledger", "In the report, not in the ledger"
        MISSING_IN_REPORT = "missing_in_report", "In the ledger, not in the report"
        AMOUNT_MISMATCH = "amount_mismatch", "Amounts differ"
        CURRENCY_MISMATCH = "currency_mismatch", "Currencies differ"
        DUPLICATE_LINE = "duplicate_line", "Duplicate line"
        UNKNOWN_REFERENCE = "unknown_reference", "Unknown reference"
        DIVERTED_PAYMENT = "diverted_payment", "Paid to the merchant although assigned to the bank"
        UNMATCHED_STATEMENT_ENTRY = "unmatched_statement_entry", "Bank entry matches nothing"
        PAYMENT_NOT_ON_STATEMENT = "payment_not_on_statement", "Payment not on the statement"
        PAYMENT_REJECTED = "payment_rejected", "Payment rejected by the bank"
        AMBIGUOUS_MATCH = "ambiguous_match", "More than one candidate fits"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    job = models.ForeignKey(
        ReconJob, on_delete=models.PROTECT, null=True, blank=True, related_name="breaks"
    )
    key = models.CharField(
        max_length=255, help_text="What it is about, stable across re-runs: 'report:{line id}'…"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    currency = models.CharField(max_length=3, blank=True)
    amount_minor = models.BigIntegerField(null=True, blank=True, help_text="As found.")
    expected_minor = models.BigIntegerField(null=True, blank=True, help_text="As expected.")
    reference = models.CharField(max_length=255, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    found_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolution = models.TextField(blank=True)
    # Resolved by no officer but by what cleared it: a bank statement match, or the ledger
    # entry that brought what a settlement report line was missing.
    resolved_match = models.ForeignKey(
        "financing.Match", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_entry = models.ForeignKey(
        "ledger.Entry", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-found_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "key"], name="break_once_per_key"),
            models.CheckConstraint(
                condition=Q(
                    status="open",
                    resolved_at__isnull=True,
                    resolved_by__isnull=True,
                    resolved_match__isnull=True,
                    resolved_entry__isnull=True,
                )
                | (
                    Q(status="resolved", resolved_at__isnull=False)
                    & ~Q(resolution="")
                    & (
                        Q(resolved_by__isnull=False)
                        | Q(resolved_match__isnull=False)
                        | Q(resolved_entry__isnull=False)
                    )
                ),
                name="break_resolution_complete",
            ),
        ]
        indexes = [models.Index(fields=["status", "kind"], name="break_status_kind_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.key}"
