"""Writes for the parties. One keyword-only function per use case."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from merchants.models import Debtor, Marketplace, MarketplaceMerchant, Membership, Merchant


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
