"""The models of notices of assignment: where they go, what was sent, how each try ended.

``financing.models`` re-exports them.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from merchants.credentials import secret_open, secret_seal
from merchants.models import Debtor, Marketplace


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


def new_sealed_webhook_secret() -> bytes:
    return secret_seal(new_webhook_secret())


class WebhookEndpoint(models.Model):
    """Where a marketplace wants notices of assignment, and the secret they are signed with.

    The secret must be readable to sign, so it is sealed at rest like an API signing secret
    (merchants/credentials.py), never stored in the clear; the admin shows it once, on creation.
    """

    marketplace = models.OneToOneField(
        Marketplace, on_delete=models.PROTECT, related_name="webhook_endpoint"
    )
    url = models.URLField(max_length=500)
    secret_sealed = models.BinaryField(default=new_sealed_webhook_secret, editable=False)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.marketplace.code} → {self.url}"

    @property
    def secret(self) -> str:
        """The signing secret, opened for signing a delivery."""
        return secret_open(bytes(self.secret_sealed))


class AssignmentNotice(models.Model):
    """A notice of assignment to one debtor: the outbox row its delivery sends.

    A marketplace that owes the receivables hears by signed webhook; a business buyer by e-mail
    with the notice as a PDF. Without an endpoint or address the notice waits, pending, until
    the sweep finds one (``waiting``).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (refused, or retries exhausted)"

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", "Signed webhook"
        EMAIL = "email", "E-mail with PDF"

    advance = models.ForeignKey(
        "financing.Advance", on_delete=models.PROTECT, related_name="notices"
    )
    debtor = models.ForeignKey(Debtor, on_delete=models.PROTECT, related_name="notices")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    marketplace = models.ForeignKey(
        Marketplace,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The debtor marketplace whose webhook receives the notice.",
    )
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    waiting = models.BooleanField(
        default=False, help_text="No endpoint or address yet: the sweep sends it once one exists."
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("resend_assignmentnotice", "Can re-send failed notices of assignment")]
        constraints = [
            models.UniqueConstraint(fields=["advance", "debtor"], name="notice_once_per_debtor"),
            models.CheckConstraint(
                condition=Q(channel="webhook", marketplace__isnull=False)
                | Q(channel="email", marketplace__isnull=True),
                name="notice_webhook_iff_marketplace",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "delivered", "failed"]),
                name="notice_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="delivered", delivered_at__isnull=False)
                | (~Q(status="delivered") & Q(delivered_at__isnull=True)),
                name="notice_delivered_has_time",
            ),
            models.CheckConstraint(
                condition=Q(waiting=False) | Q(status="pending"), name="notice_waiting_is_pending"
            ),
        ]
        indexes = [
            models.Index(fields=["status"], condition=Q(waiting=True), name="notice_waiting_idx")
        ]

    def __str__(self) -> str:
        return f"notice {self.advance.ref} → {self.debtor.name}"


class NoticeAttempt(models.Model):
    """One line of a notice's delivery history: an attempt and its outcome, or an officer's
    re-send."""

    class Outcome(models.TextChoices):
        DELIVERED = "delivered", "Delivered"
        TRANSIENT = "transient", "Failed, to be retried"
        REFUSED = "refused", "Refused"
        UNADDRESSED = "unaddressed", "No endpoint or address"
        GAVE_UP = "gave_up", "Gave up after retries"
        RESENT = "resent", "Re-sent by an officer"

    notice = models.ForeignKey(AssignmentNotice, on_delete=models.PROTECT, related_name="history")
    at = models.DateTimeField()
    channel = models.CharField(max_length=16, choices=AssignmentNotice.Channel.choices)
    destination = models.CharField(max_length=500, blank=True, help_text="URL or address.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    detail = models.TextField(blank=True, help_text="HTTP status, error, or the officer's word.")
    officer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    outcome__in=[
                        "delivered",
                        "transient",
                        "refused",
                        "unaddressed",
                        "gave_up",
                        "resent",
                    ]
                ),
                name="noticeattempt_outcome_valid",
            ),
            models.CheckConstraint(
                condition=Q(outcome="resent", officer__isnull=False)
                | (~Q(outcome="resent") & Q(officer__isnull=True)),
                name="noticeattempt_resent_by_officer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notice} {self.outcome} at {self.at:%Y-%m-%d %H:%M}"
