"""Writes for the parties. One keyword-only function per use case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from merchants import credentials
from merchants.exceptions import MerchantNotActive
from merchants.models import (
    ApiKey,
    Debtor,
    Marketplace,
    MarketplaceMerchant,
    Membership,
    Merchant,
)


@transaction.atomic
def marketplace_create(*, code: str, name: str) -> Marketplace:
    """Create a marketplace together with its debtor record (marketplaces owe payouts)."""
    marketplace = Marketplace.objects.create(code=code, name=name)
    Debtor.objects.create(kind=Debtor.Kind.MARKETPLACE, name=name, marketplace=marketplace)
    return marketplace


@transaction.atomic
def merchant_onboard(
    *,
    legal_name: str,
    country: str,
    tax_id: str,
    marketplace: Marketplace,
    seller_id: str,
    kyc_status: str = Merchant.KycStatus.PENDING,
) -> Merchant:
    """Create a merchant and link it to the marketplace that brought it, under its seller id."""
    merchant = Merchant.objects.create(
        legal_name=legal_name, country=country, tax_id=tax_id, kyc_status=kyc_status
    )
    MarketplaceMerchant.objects.create(
        marketplace=marketplace, merchant=merchant, seller_id=seller_id
    )
    return merchant


def membership_grant(*, user: AbstractBaseUser, merchant: Merchant, role: str) -> Membership:
    """Give ``user`` access to ``merchant``'s portal with ``role`` (owner, finance or viewer)."""
    membership, _ = Membership.objects.update_or_create(
        user=user, merchant=merchant, defaults={"role": role}
    )
    return membership


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A new credential; the only moment its key and secret exist in the clear."""

    api_key: ApiKey
    key: str
    signing_secret: str


def api_key_issue(
    *,
    marketplace: Marketplace | None = None,
    merchant: Merchant | None = None,
    bank: bool = False,
    now: datetime,
    label: str = "",
) -> IssuedApiKey:
    """Create an API credential for ``marketplace``, for ``merchant`` or for the ``bank``'s own
    systems (exactly one of them).

    The key and secret are returned once, in the clear, and stored only hashed and sealed.

    :raises ValueError: when not exactly one of ``marketplace``, ``merchant`` and ``bank``.
    :raises MerchantNotActive: when ``merchant`` is suspended or closed.
    """
    if [marketplace is not None, merchant is not None, bank].count(True) != 1:
        raise ValueError("Issue a key for a marketplace, a merchant or the bank, exactly one.")
    # Checked without a lock: a merchant closed a moment later keeps a key that authentication
    # refuses anyway (config/api/authentication.py), so the race grants nothing.
    if merchant is not None and merchant.status != Merchant.Status.ACTIVE:
        raise MerchantNotActive(public_id=merchant.public_id, status=merchant.status)
    prefix, key = credentials.key_generate()
    secret = credentials.secret_generate()
    api_key = ApiKey.objects.create(
        marketplace=marketplace,
        merchant=merchant,
        bank=bank,
        prefix=prefix,
        key_hash=credentials.key_hash(key),
        signing_secret_sealed=credentials.secret_seal(secret),
        label=label,
        created_at=now,
    )
    return IssuedApiKey(api_key=api_key, key=key, signing_secret=secret)


def api_key_revoke(*, api_key: ApiKey, now: datetime) -> None:
    """Revoke ``api_key`` from now on; revoking twice keeps the first time."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
