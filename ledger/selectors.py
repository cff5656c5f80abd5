"""Reads of the ledger, always scoped by who is asking."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, Func, Value
from django.db.models.functions import Replace, Upper

from ledger.models import Chain, Entry
from merchants.models import Marketplace, MarketplaceMerchant, Merchant

_SEPARATORS = " .-_/"


def merchants_by_seller_id(
    *, marketplace: Marketplace, seller_ids: Iterable[str]
) -> dict[str, Merchant]:
    """The merchants linked to ``marketplace`` among ``seller_ids``, keyed by seller id.

    Seller ids of other marketplaces' merchants are simply absent: to a marketplace they do
    not exist.
    """
    # A NUL or a lone surrogate cannot be stored, so no merchant has it: do not ask the database.
    storable = {
        s for s in seller_ids if "\x00" not in s and s.encode("utf-8", "ignore").decode() == s
    }
    links = MarketplaceMerchant.objects.filter(
        marketplace=marketplace, seller_id__in=storable
    ).select_related("merchant")
    return {link.seller_id: link.merchant for link in links}


def seller_id_of(*, marketplace: Marketplace, merchant: Merchant) -> str:
    """The seller id ``merchant`` goes by at ``marketplace``, which must be linked to it."""
    return MarketplaceMerchant.objects.values_list("seller_id", flat=True).get(
        marketplace=marketplace, merchant=merchant
    )


def merchant_for_tax_ids(*, marketplace: Marketplace, tax_ids: Iterable[str]) -> Merchant | None:
    """The merchant linked to ``marketplace`` whose normalised tax id is one of ``tax_ids``."""
    normalised: Func = Upper(F("tax_id"))
    for separator in _SEPARATORS:
        normalised = Replace(normalised, Value(separator), Value(""))
    return (
        Merchant.objects.filter(links__marketplace=marketplace)
        .annotate(tax_id_normalised=normalised)
        .filter(tax_id_normalised__in=set(tax_ids))
        .first()
    )


def normalised_identifier(value: str) -> str:
    """Upper case without spaces, dots or dashes: 'de 123.456-789' and 'DE123456789' match."""
    return "".join(ch for ch in value.upper() if ch not in _SEPARATORS)


def chain_head(*, merchant: Merchant) -> Chain:
    """The merchant's chain head; a merchant without entries has an empty one."""
    return Chain.objects.filter(merchant=merchant).first() or Chain(merchant=merchant)


def entries_page(*, merchant: Merchant, after_seq: int, limit: int) -> list[Entry]:
    """Up to ``limit`` entries of ``merchant``'s chain with seq greater than ``after_seq``."""
    return list(Entry.objects.filter(chain=merchant.pk, seq__gt=after_seq).order_by("seq")[:limit])


def entry_at(*, merchant: Merchant, seq: int) -> Entry | None:
    return Entry.objects.filter(chain=merchant.pk, seq=seq).first()
