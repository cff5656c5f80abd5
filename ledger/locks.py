"""Row locks of the ledger, taken in one order (merchant id ascending) so appends never deadlock."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from django.db import connection
from django.db.models import QuerySet

from ledger.models import Chain
from ledger.sql import placeholders, rows_later
from merchants.models import Merchant


@dataclass(slots=True)
class LockedChain:
    """A chain head this transaction holds the lock on (or, from ``head_known``, one to build on
    and compare against); ``head_*`` move as entries are built.

    ``tax_id_normalised`` is the merchant's (read in the same query), against which invoices
    naming their supplier are checked.
    """

    merchant_id: int
    public_id: str
    head_seq: int
    head_hash: str
    tax_id_normalised: str = ""
    country: str = ""

    def as_chain(self) -> Chain:
        """The chain row with its merchant, as far as the lock query read them, for the entries
        appended under this lock to carry (``entry.chain.merchant``): projectors then need no
        query for the merchant. Fields the query did not read load on access, as deferred."""
        db = connection.alias
        read = {
            "id": self.merchant_id,
            "public_id": self.public_id,
            "tax_id_normalised": self.tax_id_normalised,
            "country": self.country,
        }
        # from_db takes the values in the model's field order, whatever order the names are in.
        names = [f.attname for f in Merchant._meta.concrete_fields if f.attname in read]
        merchant = Merchant.from_db(db, names, [read[name] for name in names])
        chain = Chain.from_db(db, ["merchant_id"], [self.merchant_id])
        Chain.merchant.field.set_cached_value(chain, merchant)
        return chain


def chain_qs_for_update(merchant_ids: Iterable[int]) -> QuerySet[Chain]:
    """Chains of ``merchant_ids`` locked FOR UPDATE in ascending order."""
    return (
        Chain.objects.select_for_update()
        .filter(merchant_id__in=sorted(set(merchant_ids)))
        .order_by("merchant_id")
    )


def chains_lock(merchant_ids: Iterable[int]) -> dict[int, LockedChain]:
    """Lock the chains of ``merchant_ids``, creating the missing ones; must run in a transaction.

    Plain SQL: this runs once per append, and building the equivalent ORM query costs more
    than the database takes to answer it.
    """
    return chains_lock_later(merchant_ids)()


def chains_lock_later(merchant_ids: Iterable[int]) -> Callable[[], dict[int, LockedChain]]:
    """``chains_lock``, its statement sent now and what returns the locked heads: inside
    ``ledger.sql.one_round_trip``, in the round trip of the statements sent with it (those
    sent after it run once the locks are granted). Missing chains are created when it is
    called, in a round trip of their own."""
    wanted = set(merchant_ids)
    read = _locked_later(wanted)

    def load() -> dict[int, LockedChain]:
        chains = read()
        missing = wanted - chains.keys()
        if missing:
            # Two first appends may race to create a chain; the loser's row is ignored and it
            # then waits for the winner's lock like any other append.
            Chain.objects.bulk_create(
                [Chain(merchant_id=m) for m in missing], ignore_conflicts=True
            )
            chains.update(_locked_later(missing)())
        return chains

    return load


def _locked_later(merchant_ids: set[int]) -> Callable[[], dict[int, LockedChain]]:
    in_ids = placeholders(len(merchant_ids))
    lock = " FOR UPDATE OF c" if connection.features.has_select_for_update_of else ""
    read = rows_later(
        "SELECT c.merchant_id, m.public_id, c.head_seq, c.head_hash, m.tax_id_normalised,"
        " m.country FROM ledger_chain c"
        " JOIN merchants_merchant m ON m.id = c.merchant_id"
        f" WHERE c.merchant_id IN ({in_ids}) ORDER BY c.merchant_id{lock}",
        sorted(merchant_ids),
    )
    return lambda: {row[0]: LockedChain(*row) for row in read()}


# The heads this process last wrote, by merchant. An append outside any transaction builds on
# one and writes only if the chain still ends there and its merchant is as read (the writer
# compares in the same statement that moves the head), so it needs no lock of its own: a stale
# head costs one statement that writes nothing, never a wrong entry. Bounded, as a process may
# serve every merchant: forgetting costs only the lock a known head would have spared.
_known_heads: dict[int, LockedChain] = {}
_KNOWN_HEADS_MAX = 10_000


def heads_remember(chains: Iterable[LockedChain]) -> None:
    """Remember ``chains`` as their heads stand now (copies: appends move heads in place)."""
    if len(_known_heads) >= _KNOWN_HEADS_MAX:
        _known_heads.clear()
    for chain in chains:
        _known_heads[chain.merchant_id] = replace(chain)


def head_known(merchant_id: int) -> LockedChain | None:
    """A copy of the head this process last wrote on ``merchant_id``'s chain, if it did."""
    chain = _known_heads.get(merchant_id)
    return None if chain is None else replace(chain)


# Inside a transaction a write on a remembered head saves only the lock statement, and a stale
# one costs an append built twice: worth it only while most are found where they were left.
# The share found, as a moving average over this process's recent tries; below one half, only
# every PROBE_EVERY-th append tries, to notice when the contention has passed.
_found_share = 1.0
_untried = 0
_FOUND_WEIGHT = 0.2
PROBE_EVERY = 16


def remembered_heads_pay() -> bool:
    """Whether an append inside a transaction should write on a remembered head."""
    global _untried
    if _found_share >= 0.5:
        return True
    _untried += 1
    if _untried < PROBE_EVERY:
        return False
    _untried = 0
    return True


def remembered_head_found(found: bool) -> None:
    """Count a write on a remembered head: it found the chain where it was left, or not."""
    global _found_share
    _found_share += _FOUND_WEIGHT * (found - _found_share)


def remembered_heads_reset() -> None:
    """Forget this process's tally (a test starts from a known state)."""
    global _found_share, _untried
    _found_share, _untried = 1.0, 0
