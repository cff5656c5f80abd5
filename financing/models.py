"""Receivables, advances and their assignments; every financing model is importable from here.

The invariants that protect money live in constraints: one live assignment per receivable and
per invoice fingerprint (double financing) here, a facility's commitments within its limit
(``facility_models``), one active blacklisting per merchant (``blacklisting_models``).
Services check the same rules first to explain a refusal; the database is what makes them hold
under concurrency.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from typing import Any, Self

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from financing.blacklisting_models import Blacklisting, MerchantFile
from financing.controls import DebtorLimit, DuplicateClearance, RiskChange
from financing.facility_models import Facility, FacilityChange
from financing.monitoring_models import EarlyWarning
from financing.notice_models import (
    AssignmentNotice,
    NoticeAttempt,
    WebhookEndpoint,
    new_sealed_webhook_secret,
    new_webhook_secret,
)
from financing.reconciliation.match_models import Match, MatchItem, MatchRule
from financing.reconciliation.models import Break, ReconJob
from financing.reconciliation.payments import (
    BankStatement,
    Payment,
    PaymentBatch,
    StatementEntry,
)
from financing.reconciliation.report_models import BankStatementJob, SettlementReportJob
from financing.settlement_models import (
    DeadLetter,
    LineAllocation,
    Recourse,
    SettlementWork,
    SuspenseItem,
)
from ledger.event_fields import REF_MAX_LENGTH
from ledger.models import Entry
from ledger.sql import row_update
from merchants.models import Debtor, Merchant

__all__ = [  # the models of the other modules, importable from here like the rest
    "Advance",
    "Assignment",
    "AssignmentNotice",
    "BankStatement",
    "BankStatementJob",
    "Blacklisting",
    "Break",
    "DeadLetter",
    "DebtorLimit",
    "DuplicateClearance",
    "EarlyWarning",
    "Facility",
    "FacilityChange",
    "LineAllocation",
    "Match",
    "MatchItem",
    "MatchRule",
    "MerchantFile",
    "NoticeAttempt",
    "Payment",
    "PaymentBatch",
    "Receivable",
    "ReconJob",
    "Recourse",
    "RiskChange",
    "SettlementReportJob",
    "SettlementWork",
    "StatementEntry",
    "SuspenseItem",
    "WebhookEndpoint",
    "new_sealed_webhook_secret",
    "new_webhook_secret",
]


def new_advance_ref() -> str:
    return "adv_" + secrets.token_hex(8)


def assignment_entry_ref(*, invoice_ref: str, advance_ref: str) -> str:
    """The chain ref of the ``receivable.assigned`` entry of one invoice in one advance.

    "<invoice ref>@<advance ref>" while it fits a chain ref, so the chain reads naturally and
    entries written before stay where readers look for them; an invoice ref too long for that
    (any ref up to 128 characters finances) is replaced by its SHA-256: "sha256-<hex>@<advance>".
    The entry's data names the invoice in full either way.
    """
    readable = f"{invoice_ref}@{advance_ref}"
    if len(readable) <= REF_MAX_LENGTH:
        return readable
    digest = hashlib.sha256(invoice_ref.encode()).hexdigest()
    return f"sha256-{digest}@{advance_ref}"


class Receivable(models.Model):
    """An issued invoice as financing sees it: a projection, rebuilt from the chain like the rest.

    Face amount, dates and debtor are read from the invoice projection; this row adds what
    financing needs indexed: the invoice's fingerprint across merchants and marketplaces.
    Assignments point at ``(merchant, ref)``, never at this row, so a rebuild can replace it.
    """

    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    ref = models.CharField(max_length=128, help_text="The invoice's ref.")
    source = models.CharField(max_length=64)
    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="+", db_index=False)
    fingerprint = models.CharField(max_length=64)
    debtor_key = models.CharField(
        max_length=160,
        help_text="Who owes it: 'marketplace:{code}', 'business:{tax id}' or "
        "'business-name:{country}:{normalised name}'.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "ref"], name="receivable_ref_unique")
        ]
        indexes = [models.Index(fields=["fingerprint"], name="receivable_fingerprint_idx")]

    def __str__(self) -> str:
        return f"receivable {self.ref}"


class Advance(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        REQUOTE = "requote", "New price awaiting the merchant"
        WITHDRAWN = "withdrawn", "Withdrawn by the merchant"
        APPROVED = "approved", "Approved, awaiting authorization"
        REJECTED = "rejected", "Rejected"
        DISBURSED = "disbursed", "Disbursed"
        OVERDUE = "overdue", "Overdue"
        REPAID = "repaid", "Repaid"

    OPEN = (Status.REQUESTED, Status.APPROVED)
    # Holding receivables and facility room: open, or waiting for the merchant to accept a price.
    PENDING = (Status.REQUESTED, Status.REQUOTE, Status.APPROVED)
    WITHDRAWABLE = (Status.REQUESTED, Status.REQUOTE)
    OUTSTANDING = (Status.DISBURSED, Status.OVERDUE)

    # Not columns: the assignments a decision read with its lock (``assignments_by_id``), the
    # bank-wide limits of their debtors it holds locked, by (currency, debtor key), None where a
    # debtor has none (``financing.locks.debtor_limits_lock``), and the values the advance was
    # loaded with (``changes_save``).
    decision_assignments: list[Assignment] | None = None
    decision_limits: dict[tuple[str, str], int | None] | None = None
    loaded_values: dict[str, Any] | None = None

    ref = models.CharField(max_length=40, unique=True, default=new_advance_ref, editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="advances")
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="advances")
    currency = models.CharField(max_length=3)
    face_minor = models.BigIntegerField()
    advance_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField()
    reserve_minor = models.BigIntegerField()
    days = models.PositiveIntegerField()
    due_date = models.DateField()
    apr = models.DecimalField(max_digits=9, decimal_places=2)
    mean_days = models.DecimalField(
        max_digits=7, decimal_places=2, default=0, help_text="Advance-weighted mean tenor."
    )
    price_hash = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the price the advance carries now."
    )
    priced_on = models.DateField(help_text="The business day the price is for: fee days from it.")
    quote_expires_at = models.DateTimeField(help_text="End of the business day the price is for.")
    accepted_hash = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the price the merchant accepted."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REQUESTED)
    risk_score = models.PositiveSmallIntegerField()
    risk_factors = models.JSONField(default=list)
    requested_at = models.DateTimeField()
    request_key = models.CharField(
        max_length=255, help_text="The merchant's idempotency key for the request."
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_hash = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the terms the approval binds."
    )
    authorized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Two notes, kept apart so internal reasoning never reaches the merchant: decision_note is
    # the officers' record (their approval note, why a second officer is needed, why an
    # approval was voided, a withdrawal's reason); merchant_note is only what an officer wrote
    # for the merchant when approving or rejecting, and the only one the portal shows.
    decision_note = models.TextField(blank=True, help_text="For officers only; never shown.")
    merchant_note = models.TextField(
        blank=True, help_text="What the officers told the merchant; shown in its portal."
    )
    disbursed_at = models.DateTimeField(null=True, blank=True)
    late_fee_minor = models.BigIntegerField(default=0)
    late_fee_accrued_to = models.DateField(null=True, blank=True)
    non_accrual_on = models.DateField(
        null=True, blank=True, help_text="The day a receivable of it stopped accruing late fees."
    )
    repaid_at = models.DateTimeField(null=True, blank=True)
    fee_recognised_minor = models.BigIntegerField(
        default=0,
        help_text="Discount fee recognised as income so far (daily over the advance's life).",
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        permissions = [
            ("approve_advance", "Can approve or reject advances (maker)"),
            ("authorize_advance", "Can authorize disbursement of approved advances (checker)"),
            ("manage_blacklist", "Can blacklist merchants and lift blacklistings"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "request_key"], name="advance_request_key_unique"
            ),
            models.CheckConstraint(
                condition=Q(
                    face_minor__gt=0,
                    advance_minor__gt=0,
                    advance_minor__lte=F("face_minor"),
                    fee_minor__gte=0,
                    fee_minor__lt=F("advance_minor"),
                    reserve_minor=F("face_minor") - F("advance_minor"),
                    late_fee_minor__gte=0,
                ),
                name="advance_amounts_consistent",
            ),
            models.CheckConstraint(
                condition=Q(fee_recognised_minor__gte=0, fee_recognised_minor__lte=F("fee_minor")),
                name="advance_fee_recognised_within_fee",
            ),
            models.CheckConstraint(
                condition=~Q(status="repaid") | Q(repaid_at__isnull=False),
                name="advance_repaid_has_time",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=["requested", "requote", "approved", "rejected", "withdrawn"]
                )
                | Q(disbursed_at__isnull=False),
                name="advance_disbursed_has_time",
            ),
            # Price certainty: nothing is approved or paid out at a price the merchant did not
            # accept, nor after the accepted quote expired.
            models.CheckConstraint(
                condition=Q(status__in=["requote", "rejected", "withdrawn"])
                | Q(accepted_hash=F("price_hash")),
                name="advance_at_accepted_price",
            ),
            models.CheckConstraint(
                condition=Q(disbursed_at__isnull=True) | Q(disbursed_at__lte=F("quote_expires_at")),
                name="advance_disbursed_before_quote_expiry",
            ),
            # Maker-checker in the database too: the checker is never the maker.
            models.CheckConstraint(
                condition=Q(authorized_by__isnull=True) | ~Q(authorized_by=F("approved_by")),
                name="advance_checker_not_maker",
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "requested",
                        "requote",
                        "withdrawn",
                        "approved",
                        "rejected",
                        "disbursed",
                        "overdue",
                        "repaid",
                    ]
                ),
                name="advance_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["status", "due_date"], name="advance_status_due_idx")]

    def __str__(self) -> str:
        return self.ref

    @classmethod
    def from_db(cls, db: str | None, field_names: Collection[str], values: Collection[Any]) -> Self:
        """As the ORM loads it, with the values it was loaded with kept: Django's documented way
        to tell later which fields changed."""
        advance = super().from_db(db, field_names, values)
        advance.loaded_values = dict(zip(field_names, values, strict=True))
        return advance

    def changes_save(self) -> None:
        """Save the fields changed since the advance was loaded, in one plain UPDATE
        (``ledger.sql.row_update``); every field, through ``save``, if it was not loaded.

        The caller loaded the advance under its lock and holds it (``financing.locks``), so
        the row is as loaded but for what this writes: a field set back to its loaded value is
        rightly left alone.
        """
        if self.loaded_values is None or self._state.adding:
            self.save()
            return
        loaded, current = self.loaded_values, self.__dict__  # deferred fields are absent
        changed = [
            field.attname
            for field in self._meta.concrete_fields
            if field.attname in current
            and (
                field.attname not in loaded
                or current[field.attname] != loaded[field.attname]
                # A list or dict may have been changed in place, so equal to what was loaded.
                or isinstance(current[field.attname], list | dict)
            )
        ]
        row_update(self, changed)
        loaded.update((attname, current[attname]) for attname in changed)

    def assignments_by_id(self) -> list[Assignment]:
        """Its assignments in id order: the order they were requested in, and are priced in.

        The rows a decision read with its lock (``financing.locks.advance_decision_lock``), kept
        in ``decision_assignments``: whoever changes them under such a caller changes those
        too. Otherwise read now.
        """
        if self.decision_assignments is not None:
            return self.decision_assignments
        return list(self.assignments.order_by("pk"))


class Assignment(models.Model):
    """A receivable held by an advance: from the request on, assigned to the bank once disbursed.

    The two partial unique indexes make double financing impossible in the database: one live
    assignment per receivable, and one per invoice fingerprint (the same invoice spelled
    differently or sent through another marketplace).
    """

    class Status(models.TextChoices):
        HELD = "held", "Held by a request"
        ASSIGNED = "assigned", "Assigned to the bank"
        RELEASED = "released", "Released"
        SETTLED = "settled", "Settled"

    LIVE = (Status.HELD, Status.ASSIGNED)

    advance = models.ForeignKey(Advance, on_delete=models.PROTECT, related_name="assignments")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    invoice_ref = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=64)
    debtor = models.ForeignKey(Debtor, on_delete=models.PROTECT, related_name="assignments")
    debtor_key = models.CharField(max_length=160, help_text="The receivable's debtor key.")
    face_minor = models.BigIntegerField()
    advance_minor = models.BigIntegerField()
    due_date = models.DateField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.HELD)
    late_fee_minor = models.BigIntegerField(
        default=0, help_text="Late fees accrued on this receivable's overdue principal."
    )
    # Settlement: what the debtor paid and what dilution took off (their sum never passes the
    # face), and how the waterfall split the payments.
    paid_minor = models.BigIntegerField(default=0)
    diluted_minor = models.BigIntegerField(default=0)
    late_fee_paid_minor = models.BigIntegerField(default=0)
    principal_repaid_minor = models.BigIntegerField(default=0)
    reserve_used_minor = models.BigIntegerField(
        default=0, help_text="Reserve released to the merchant or spent on its late fees."
    )
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the debtor owed nothing more: paid or diluted."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "invoice_ref"],
                condition=Q(status__in=["held", "assigned"]),
                name="assignment_one_live_per_receivable",
            ),
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=Q(status__in=["held", "assigned"]),
                name="assignment_one_live_per_fingerprint",
            ),
            models.UniqueConstraint(
                fields=["advance", "invoice_ref"], name="assignment_once_per_advance"
            ),
            models.CheckConstraint(
                condition=Q(
                    face_minor__gt=0,
                    advance_minor__gt=0,
                    advance_minor__lte=F("face_minor"),
                    late_fee_minor__gte=0,
                ),
                name="assignment_amounts_positive",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["held", "assigned", "released", "settled"]),
                name="assignment_status_valid",
            ),
            # Settlement never takes more than there is: no balance of a receivable goes negative.
            models.CheckConstraint(
                condition=Q(
                    paid_minor__gte=0,
                    diluted_minor__gte=0,
                    paid_minor__lte=F("face_minor") - F("diluted_minor"),
                    late_fee_paid_minor__gte=0,
                    late_fee_paid_minor__lte=F("late_fee_minor"),
                    principal_repaid_minor__gte=0,
                    principal_repaid_minor__lte=F("advance_minor"),
                    reserve_used_minor__gte=0,
                    reserve_used_minor__lte=F("face_minor") - F("advance_minor"),
                ),
                name="assignment_settlement_within_face",
            ),
            models.CheckConstraint(
                condition=Q(status="settled", closed_at__isnull=False)
                | (~Q(status="settled") & Q(closed_at__isnull=True)),
                name="assignment_settled_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["debtor", "status"], name="assignment_debtor_idx"),
            models.Index(fields=["debtor_key", "status"], name="assignment_debtor_key_idx"),
            # A receivable's assignments, settled and released ones too (the portal's list
            # asks for each invoice's latest): the unique constraints cover only live ones.
            models.Index(fields=["merchant", "invoice_ref"], name="assignment_receivable_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_ref} → {self.advance.ref}"
