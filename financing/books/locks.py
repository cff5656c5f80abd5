"""Row locks of the books, taken in one order (account id ascending) so postings never deadlock.

Two transfers A -> B and B -> A that locked in the order of their legs would each hold one
account and wait for the other. Callers that also lock a merchant's chain lock the chain first
(``financing.locks.merchant_chain_lock``), then the accounts through ``journal_post``.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

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
    with connection.cursor() as cursor:
        # Only placeholders and a fixed clause are formatted into the SQL, never a value.
        if connection.vendor == "postgresql":
            cursor.execute(ACCOUNTS_FOR_UPDATE, [ids])
        else:
            placeholders = ", ".join(["%s"] * len(ids))
            lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
            cursor.execute(
                f"SELECT id, currency FROM books_account WHERE id IN ({placeholders})"  # noqa: S608
                f" ORDER BY id{lock}",
                ids,
            )
        return dict(cursor.fetchall())
