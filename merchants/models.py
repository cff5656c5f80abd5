"""The parties: marketplaces, the merchants who sell through them, debtors and portal users."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from merchants.identifiers import tax_id_normalise


def new_merchant_public_id() -> str:
    # Unguessable, URL-safe, and clearly a merchant id when it shows up in a log line.
    return "mer_" + secrets.token_hex(8)


class Marketplace(models.Model):
    code = models.SlugField(max_length=40, unique=True, help_text="Short stable code, e.g. 'acme'.")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Merchant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    class KycStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        VERIFIED = "verified", "Verified"
        REJECTED = "rejected", "Rejected"

    public_id = models.CharField(
        max_length=40, unique=True, default=new_merchant_public_id, editable=False
    )
    legal_name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, e.g. DE.")
    tax_id = models.CharField(max_length=40, help_text="VAT or other tax identifier.")
    # tax_id_normalise(tax_id, country=country), kept by save(): supplier matching compares
    # this column, so the database never needs a second copy of the normalisation.
    tax_id_normalised = models.TextField(editable=False, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    kyc_status = models.CharField(
        max_length=16, choices=KycStatus.choices, default=KycStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["legal_name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["active", "suspended", "closed"]),
                name="merchant_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(kyc_status__in=["pending", "verified", "rejected"]),
                name="merchant_kyc_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(country__regex=r"^[A-Z]{2}$"), name="merchant_country_iso"
            ),
        ]
        indexes = [
            models.Index(fields=["tax_id_normalised"], name="merchant_tax_id_normalised_idx")
        ]

    def __str__(self) -> str:
        return f"{self.legal_name} ({self.public_id})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Derived here rather than in a service because every write of tax_id or country, the
        # admin's included, goes through save(); no code updates either with QuerySet.update().
        self.tax_id_normalised = tax_id_normalise(self.tax_id, country=self.country)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"tax_id", "country"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "tax_id_normalised"}
        super().save(*args, **kwargs)


class MarketplaceMerchant(models.Model):
    """A merchant as a marketplace knows it: under the marketplace's own seller id."""

    marketplace = models.ForeignKey(Marketplace, on_delete=models.PROTECT, related_name="links")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="links")
    seller_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "marketplace link"
        constraints = [
            models.UniqueConstraint(
                fields=["marketplace", "seller_id"], name="marketplacemerchant_seller_id_unique"
            ),
            models.UniqueConstraint(
                fields=["marketplace", "merchant"], name="marketplacemerchant_once_per_marketplace"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.marketplace.code}:{self.seller_id}"


class Debtor(models.Model):
    """Whoever owes a receivable: the marketplace itself or a business buyer."""

    class Kind(models.TextChoices):
        MARKETPLACE = "marketplace", "Marketplace"
        BUSINESS = "business", "Business buyer"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200)
    tax_id = models.CharField(max_length=40, blank=True)
    country = models.CharField(max_length=2, blank=True)
    name_key = models.CharField(
        max_length=200,
        blank=True,
        help_text="The name folded (merchants.identifiers.party_name_normalise): with the "
        "country, what identifies a business buyer without a tax id.",
    )
    email = models.EmailField(
        max_length=254,
        blank=True,
        help_text="Where a business buyer's notices of assignment are e-mailed.",
    )
    marketplace = models.OneToOneField(
        Marketplace, on_delete=models.PROTECT, null=True, blank=True, related_name="debtor"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind="marketplace", marketplace__isnull=False)
                    | Q(kind="business", marketplace__isnull=True)
                ),
                name="debtor_marketplace_iff_kind",
            ),
            # A business buyer is identified by its tax id; two rows for one buyer would split
            # its concentration limit in two.
            models.UniqueConstraint(
                fields=["tax_id", "country"],
                condition=Q(kind="business") & ~Q(tax_id=""),
                name="debtor_business_tax_id_unique",
            ),
            # Without a tax id, the folded name and the country: "ACME GmbH" and "Acme GmbH."
            # are one buyer, never two rows with a limit each.
            models.UniqueConstraint(
                fields=["name_key", "country"],
                condition=Q(kind="business", tax_id=""),
                name="debtor_business_name_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A portal user's access to one merchant.

    A merchant that has an owner keeps one: the last owner can be neither demoted nor removed
    (``merchants.team``, and a constraint trigger in migration 0009 on PostgreSQL).
    """

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        FINANCE = "finance", "Finance"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "merchant"], name="membership_unique"),
            models.CheckConstraint(
                condition=Q(role__in=["owner", "finance", "viewer"]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant.public_id} ({self.role})"


class ApiKey(models.Model):
    """An API credential: a bearer key (stored hashed) and an HMAC signing secret.

    A key belongs to exactly one party: a marketplace (it pushes evidence for its merchants),
    one merchant (it acts for that merchant alone, e.g. requesting advances) or the bank's own
    systems (``bank``: they send bank statements). The database
    refuses a key with both or neither, so no code path can mint a key that speaks for two.

    The signing secret must be readable to verify signatures, so it is stored encrypted
    (merchants/credentials.py), never in the clear. Several keys may be active at once, so a
    party can rotate without downtime.
    """

    marketplace = models.ForeignKey(
        Marketplace, on_delete=models.PROTECT, null=True, blank=True, related_name="api_keys"
    )
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, null=True, blank=True, related_name="api_keys"
    )
    bank = models.BooleanField(
        default=False,
        help_text="A key of the bank's own systems: it sends bank statements, nothing else.",
    )
    prefix = models.CharField(max_length=24, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    signing_secret_sealed = models.BinaryField(editable=False)
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a request last authenticated with it, to within a few minutes"
        " (config/api/authentication.py writes it at most every few minutes per process).",
    )

    class Meta:
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=Q(key_hash__regex=r"^[0-9a-f]{64}$"), name="apikey_hash_hex"
            ),
            models.CheckConstraint(
                condition=(
                    Q(marketplace__isnull=False, merchant__isnull=True, bank=False)
                    | Q(marketplace__isnull=True, merchant__isnull=False, bank=False)
                    | Q(marketplace__isnull=True, merchant__isnull=True, bank=True)
                ),
                name="apikey_exactly_one_owner",
                violation_error_message="A key belongs to a marketplace, to a merchant or to "
                "the bank: choose exactly one.",
            ),
        ]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"{self.prefix}… ({self.owner_label}, {state})"

    @property
    def owner_label(self) -> str:
        """The marketplace's code, the merchant's public id or 'bank'."""
        if self.bank:
            return "bank"
        if self.marketplace is not None:
            return self.marketplace.code
        return self.merchant.public_id if self.merchant is not None else "no owner"


class BankAccount(models.Model):
    """Where a merchant's money is paid: an IBAN, or a local account number with its BIC.

    The number is sealed (merchants/credentials.py, the ring ``reseal_secrets`` rotates) and
    never stored in the clear; ``masked`` is what every page and log shows. A merchant has at
    most one active account; a new one is proposed and becomes active only when a second, senior
    officer confirms it (a changed payee is the classic fraud), retiring the old one;
    a rejected proposal ends `rejected`.
    """

    class Kind(models.TextChoices):
        IBAN = "iban", "IBAN"
        LOCAL = "local", "Local account number and BIC"

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed, awaiting a senior officer"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        REJECTED = "rejected", "Rejected by a senior officer"

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="bank_accounts")
    holder_name = models.CharField(max_length=70, help_text="As the bank knows the holder.")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.IBAN)
    # The IBAN, or the local account number, sealed; named for the usual case.
    iban_sealed = models.BinaryField(editable=False)
    bic = models.CharField(max_length=11, blank=True)
    masked = models.CharField(max_length=40, editable=False, help_text="e.g. DE89 •••• 3000")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"],
                condition=Q(status="active"),
                name="bankaccount_one_active_per_merchant",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["proposed", "active", "retired", "rejected"]),
                name="bankaccount_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["iban", "local"]), name="bankaccount_kind_valid"
            ),
            # A local number routes only with the bank's BIC; an IBAN may carry one.
            models.CheckConstraint(
                condition=Q(kind="iban") | ~Q(bic=""), name="bankaccount_local_has_bic"
            ),
            models.CheckConstraint(
                condition=Q(bic="") | Q(bic__regex=r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$"),
                name="bankaccount_bic_format",
            ),
            models.CheckConstraint(condition=~Q(masked=""), name="bankaccount_masked_set"),
        ]

    def __str__(self) -> str:
        return f"{self.masked} ({self.status})"
