"""Row locks of the ledger, taken in one order (merchant id ascending) so appends never deadlock."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from ledger.models import Chain


def chain_qs_for_update(merchant_ids: Iterable[int]) -> QuerySet[Chain]:
    """Chains of ``merchant_ids`` locked FOR UPDATE in ascending order, with their merchant."""
    return (
        Chain.objects.select_for_update(of=("self",))
        .select_related("merchant")
        .filter(merchant_id__in=sorted(set(merchant_ids)))
        .order_by("merchant_id")
    )


def chains_lock(merchant_ids: Iterable[int]) -> dict[int, Chain]:
    """Lock the chains of ``merchant_ids``, creating the missing ones; must run in a transaction."""
    wanted = set(merchant_ids)
    chains = {chain.merchant_id: chain for chain in chain_qs_for_update(wanted)}
    missing = wanted - chains.keys()
    if missing:
        # Two first appends may race to create a chain; the loser's row is ignored and it then
        # waits for the winner's lock like any other append.
        Chain.objects.bulk_create([Chain(merchant_id=m) for m in missing], ignore_conflicts=True)
        chains.update((chain.merchant_id, chain) for chain in chain_qs_for_update(missing))
    return chains
