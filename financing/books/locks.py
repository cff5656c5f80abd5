"""Row locks of the books, taken in one order so postings never deadlock.

Two transfers A -> B and B -> A that locked in the order of their legs would each hold one
account and wait for the other. The order, for every caller:

1. the merchant's chain, where the caller also appends to it (``financing.locks.merchant_chain_
   lock``): callers take it themselves, before calling ``journal_post``;
2. the ``books_account`` rows whose own balance moves, in ascending id order: a merchant's own
   accounts, or, for a bank-level entry (no merchant), the bank's accounts;
3. the entry's idempotency key (its unique index, while the entry is inserted);
4. the entry's merchant's ``books_accountshard`` rows of the bank's accounts, in ascending
   account id order (journal_post's upsert, after the entry is in).

An entry of merchant M never takes another merchant's rows (its legs may only be M's accounts
or the bank's, and the bank's move M's shards), and takes no row of the bank's accounts at all:
so settlements of different merchants share no lock in the books. A wait at step 2 holds only
rows before it in id order, a wait at step 3 only rows of step 2, a wait at step 4 only rows
before it; no cycle can form.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from ledger.sql import placeholders

# The accounts of an array of ids, locked in ascending id order: a row is locked as it leaves
# the sort. journal_post embeds it as the first part of its one statement.
ACCOUNTS_FOR_UPDATE = (
    "SELECT id, currency FROM books_account WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE"
)


def accounts_lock(account_ids: Iterable[int]) -> dict[int, str]:
    """Lock the accounts of ``account_ids`` in ascending order; return each one's currency.

    Must run in a transaction. On PostgreSQL journal_post takes the same locks inside its own
    statement (ACCOUNTS_FOR_UPDATE) to save a round trip; this is for other callers and for
    SQLite, whose IMMEDIATE transactions already serialize writers.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    with connection.cursor() as cursor:
        # Only placeholders and a fixed clause are formatted into the SQL, never a value.
        if connection.vendor == "postgresql":
            cursor.execute(ACCOUNTS_FOR_UPDATE, [ids])
        else:
            in_ids = placeholders(len(ids))
            lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
            cursor.execute(
                f"SELECT id, currency FROM books_account WHERE id IN ({in_ids})"  # noqa: S608
                f" ORDER BY id{lock}",
                ids,
            )
        return dict(cursor.fetchall())
