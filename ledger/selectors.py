"""Reads of the ledger, always scoped by who is asking."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from ledger.models import Chain, Entry
from ledger.sql import placeholders
from merchants.identifiers import tax_id_is_national, tax_id_is_own, tax_id_normalise
from merchants.models import Marketplace, MarketplaceMerchant, Merchant


def merchants_by_seller_id(
    *, marketplace: Marketplace, seller_ids: Iterable[str]
) -> dict[str, Merchant]:
    """The merchants linked to ``marketplace`` among ``seller_ids``, keyed by seller id.

    Seller ids of other marketplaces' merchants are simply absent: to a marketplace they do
    not exist.
    """
    links = MarketplaceMerchant.objects.filter(
        marketplace=marketplace, seller_id__in=_storable(seller_ids)
    ).select_related("merchant")
    return {link.seller_id: link.merchant for link in links}


# Asked by every ingest request, which needs the ids alone: the ORM's query building and two
# model instances per link were 14 % of a single-event POST's CPU (py-spy).
_MERCHANT_IDS = (
    "SELECT seller_id, merchant_id FROM merchants_marketplacemerchant"
    " WHERE marketplace_id = %s AND seller_id IN ({seller_ids})"
)


def merchant_ids_by_seller_id(
    *, marketplace: Marketplace, seller_ids: Iterable[str]
) -> dict[str, int]:
    """What ``merchants_by_seller_id`` finds, as merchant ids."""
    storable = list(_storable(seller_ids))
    if not storable:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _MERCHANT_IDS.format(seller_ids=placeholders(len(storable))),
            [marketplace.pk, *storable],
        )
        return dict(cursor.fetchall())


def _storable(seller_ids: Iterable[str]) -> set[str]:
    """A NUL or a lone surrogate cannot be stored, so no merchant has it: the database is not
    asked for such ids."""
    return {s for s in seller_ids if "\x00" not in s and s.encode("utf-8", "ignore").decode() == s}


def seller_id_of(*, marketplace: Marketplace, merchant: Merchant) -> str:
    """The seller id ``merchant`` goes by at ``marketplace``, which must be linked to it."""
    return MarketplaceMerchant.objects.values_list("seller_id", flat=True).get(
        marketplace=marketplace, merchant=merchant
    )


def merchant_for_tax_ids(*, marketplace: Marketplace, tax_ids: Iterable[str]) -> Merchant | None:
    """The merchant linked to ``marketplace`` whose tax id is one of ``tax_ids``, however spelled.

    Both sides go through the one normaliser (merchants.identifiers); a bare national number
    among ``tax_ids`` is the merchant's own only when qualified with the merchant's country.
    """
    wanted = {tax_id_normalise(tax_id) for tax_id in tax_ids} - {""}
    if not wanted:
        return None
    mine = Merchant.objects.filter(links__marketplace=marketplace)
    national = {tax_id for tax_id in wanted if tax_id_is_national(tax_id)}
    candidates = set(wanted)
    if national:
        countries = mine.order_by().values_list("country", flat=True).distinct()
        candidates |= {tax_id_normalise(n, country=c) for n in national for c in countries}
    for merchant in mine.filter(tax_id_normalised__in=candidates):
        # A bare number matched through another merchant's country is not this one's.
        own = {"own_normalised": merchant.tax_id_normalised, "country": merchant.country}
        if any(tax_id_is_own(tax_id, **own) for tax_id in wanted):
            return merchant
    return None


def chain_head(*, merchant: Merchant) -> Chain:
    """The merchant's chain head; a merchant without entries has an empty one."""
    return Chain.objects.filter(merchant=merchant).first() or Chain(merchant=merchant)


def entries_page(*, merchant: Merchant, after_seq: int, limit: int) -> list[Entry]:
    """Up to ``limit`` entries of ``merchant``'s chain with seq greater than ``after_seq``."""
    return list(Entry.objects.filter(chain=merchant.pk, seq__gt=after_seq).order_by("seq")[:limit])


def entry_at(*, merchant: Merchant, seq: int) -> Entry | None:
    return Entry.objects.filter(chain=merchant.pk, seq=seq).first()
