"""Reads for the parties, always scoped by who is asking."""

from __future__ import annotations

from merchants.models import Marketplace, Merchant


def merchant_for_seller_id(*, marketplace: Marketplace, seller_id: str) -> Merchant | None:
    """Return the merchant ``marketplace`` knows as ``seller_id``, or None if it has none."""
    return Merchant.objects.filter(
        links__marketplace=marketplace, links__seller_id=seller_id
    ).first()
