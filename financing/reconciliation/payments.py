"""The models of money movement with the bank: payments out (and the pain.001 batches that
carry them) and bank statements in (camt.053 / camt.054, one row per entry). ``financing.models``
re-exports them.

A payment is written in the transaction that moves the money in the books (a disbursement, a
release to the merchant), keyed by what caused it, so it exists exactly once. It leaves
disbursement clearing only when a statement entry shows it (matching, ``statement_entry``).
"""

from __future__ import annotations

import hashlib

from django.db import models
from django.db.models import Q

from financing.reconciliation.models import ReconJob
from merchants.models import BankAccount, Merchant

# ISO 20022 / SEPA "restricted character set" for identifiers, without a leading or double '/'.
END_TO_END_ID_REGEX = r"^[A-Za-z0-9?:().,'+-][A-Za-z0-9/?:().,'+ -]{0,34}$"


def end_to_end_id_for(source_key: str) -> str:
    """The end-to-end id of the payment caused by ``source_key``: 34 SEPA-safe characters,
    the same every time, so a payment re-created from the same cause carries the same id."""
    return "CF" + hashlib.sha256(source_key.encode()).hexdigest()[:32].upper()


class PaymentBatch(models.Model):
    """One pain.001 credit-transfer file: the payments it carries and the XML as sent.

    The file names every creditor's account in the clear, so it is stored sealed like the
    accounts themselves (CHAINFIN_SEALED_FIELDS) and opened only to be downloaded.
    """

    class Scheme(models.TextChoices):
        PAIN_001_001_03 = "pain.001.001.03", "pain.001.001.03"
        PAIN_001_001_09 = "pain.001.001.09", "pain.001.001.09"

    msg_id = models.CharField(max_length=35, unique=True)
    created_at = models.DateTimeField()
    scheme = models.CharField(max_length=16, choices=Scheme.choices)
    currency = models.CharField(max_length=3)
    file_sha256 = models.CharField(max_length=64)
    xml_sealed = models.BinaryField(editable=False)
    payments_count = models.PositiveIntegerField()
    control_sum_minor = models.BigIntegerField()

    class Meta:
        verbose_name_plural = "payment batches"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scheme__in=["pain.001.001.03", "pain.001.001.09"]),
                name="paymentbatch_scheme_valid",
            ),
            models.CheckConstraint(
                condition=Q(payments_count__gt=0, control_sum_minor__gt=0),
                name="paymentbatch_not_empty",
            ),
            models.CheckConstraint(
                condition=Q(msg_id__regex=END_TO_END_ID_REGEX), name="paymentbatch_msg_id_safe"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.msg_id} ({self.scheme}, {self.payments_count} payments)"


class BankStatement(models.Model):
    """One camt.053 statement or camt.054 notification of one account, as imported."""

    class Kind(models.TextChoices):
        CAMT_053 = "camt.053", "Statement (camt.053)"
        CAMT_054 = "camt.054", "Debit/credit notification (camt.054)"

    job = models.ForeignKey(ReconJob, on_delete=models.PROTECT, related_name="statements")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    message_id = models.CharField(max_length=35)
    statement_id = models.CharField(max_length=35)
    account_iban_masked = models.CharField(max_length=40, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message_id", "statement_id"], name="bankstatement_once"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["camt.053", "camt.054"]), name="bankstatement_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id}/{self.statement_id}"


class StatementEntry(models.Model):
    """One entry (Ntry) of a statement: money the bank booked, or will, on the account."""

    class Direction(models.TextChoices):
        CREDIT = "credit", "Credit (in)"
        DEBIT = "debit", "Debit (out)"

    class MatchStatus(models.TextChoices):
        UNMATCHED = "unmatched", "Unmatched"
        SUGGESTED = "suggested", "Suggested, awaiting an officer"
        MATCHED = "matched", "Matched"

    statement = models.ForeignKey(BankStatement, on_delete=models.PROTECT, related_name="entries")
    line = models.PositiveIntegerField(help_text="Its position in the statement, from 0.")
    entry_ref = models.CharField(max_length=35, blank=True, help_text="AcctSvcrRef or NtryRef.")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    booking_date = models.DateField(null=True, blank=True)
    value_date = models.DateField(null=True, blank=True)
    booked = models.BooleanField(help_text="Status BOOK; pending and informational are not.")
    end_to_end_ids = models.JSONField(default=list, blank=True)
    references = models.JSONField(default=list, blank=True)
    counterparty_name = models.CharField(max_length=140, blank=True)
    details = models.JSONField(
        default=list, blank=True, help_text="Per TxDtls: end_to_end_id, reference, amount_minor."
    )
    match_status = models.CharField(
        max_length=16, choices=MatchStatus.choices, default=MatchStatus.UNMATCHED
    )

    class Meta:
        verbose_name_plural = "statement entries"
        ordering = ["statement", "line"]
        constraints = [
            models.UniqueConstraint(fields=["statement", "line"], name="statemententry_once"),
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0), name="statemententry_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(direction__in=["credit", "debit"]),
                name="statemententry_direction_valid",
            ),
            models.CheckConstraint(
                condition=Q(match_status__in=["unmatched", "suggested", "matched"]),
                name="statemententry_match_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="statemententry_currency_iso"
            ),
        ]
        indexes = [
            models.Index(fields=["match_status", "direction"], name="statemententry_match_idx")
        ]

    def __str__(self) -> str:
        return f"{self.statement} #{self.line}"


class Payment(models.Model):
    """Money the bank owes a merchant and pays by credit transfer: a disbursement's net
    advance, or what a settlement releases to the merchant after recourse."""

    class Kind(models.TextChoices):
        DISBURSEMENT = "disbursement", "Disbursement"
        RELEASE = "release", "Release to the merchant"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending, not in a payment file yet"
        BATCHED = "batched", "In a payment file"
        ACCEPTED = "accepted", "Accepted by the bank"
        REJECTED = "rejected", "Rejected by the bank"
        BOOKED = "booked", "Booked: on the bank statement"

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    end_to_end_id = models.CharField(max_length=35, unique=True)
    source_key = models.CharField(
        max_length=200, unique=True, help_text="'disburse:{advance ref}' or 'release:{journal key}'"
    )
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    batch = models.ForeignKey(
        PaymentBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True)
    created_at = models.DateTimeField()
    booked_at = models.DateTimeField(null=True, blank=True)
    statement_entry = models.ForeignKey(
        StatementEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(kind__in=["disbursement", "release"]), name="payment_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "batched", "accepted", "rejected", "booked"]),
                name="payment_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="payment_currency_iso"
            ),
            models.CheckConstraint(
                condition=Q(end_to_end_id__regex=END_TO_END_ID_REGEX),
                name="payment_end_to_end_id_safe",
            ),
            # Once in a file, a payment names the file and the account it was sent to.
            models.CheckConstraint(
                condition=Q(status="pending")
                | Q(status="booked")
                | Q(batch__isnull=False, bank_account__isnull=False),
                name="payment_batched_has_file_and_account",
            ),
            models.CheckConstraint(
                condition=Q(status="pending", batch__isnull=True) | ~Q(status="pending"),
                name="payment_pending_not_in_file",
            ),
            models.CheckConstraint(
                condition=Q(status="booked", booked_at__isnull=False)
                | (~Q(status="booked") & Q(booked_at__isnull=True)),
                name="payment_booked_at_iff_booked",
            ),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(status_reason=""),
                name="payment_rejection_has_reason",
            ),
        ]
        indexes = [models.Index(fields=["status", "currency"], name="payment_status_currency_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.end_to_end_id} ({self.status})"
