"""Tampering as a database superuser would: plain SQL, guards switched off where there are any.

Each helper changes the financing tables and nothing else, so the chain (and ``verify_ledger``)
stays intact and only a comparison of the tables with the chain can notice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.backends.utils import CursorWrapper


@contextmanager
def superuser() -> Iterator[CursorWrapper]:
    """A cursor with every trigger off (append-only and balance guards included)."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def assignment_flip_released(invoice_ref: str) -> None:
    with superuser() as cursor:
        cursor.execute(
            "UPDATE financing_assignment SET status = 'released' WHERE invoice_ref = %s",
            [invoice_ref],
        )
        assert cursor.rowcount == 1


def advance_roll_back(advance_ref: str) -> None:
    """The advance back to approved, as though it had never been paid out."""
    with superuser() as cursor:
        cursor.execute(
            "UPDATE financing_advance SET status = 'approved', disbursed_at = NULL WHERE ref = %s",
            [advance_ref],
        )
        assert cursor.rowcount == 1


def journal_shift(key: str, delta: int, *, debit: str, credit: str) -> None:
    """Move ``delta`` more from ``credit`` to ``debit`` (account kinds) in journal entry ``key``,
    balances too: the entry still balances and every balance still equals its postings."""
    with superuser() as cursor:
        for kind, change in ((debit, delta), (credit, -delta)):
            cursor.execute(
                """
                UPDATE books_posting p SET amount_minor = p.amount_minor + %s
                FROM books_account a, books_journalentry e
                WHERE a.id = p.account_id AND e.id = p.entry_id AND e.key = %s
                  AND a.code LIKE %s
                RETURNING p.account_id, p.merchant_id, a.merchant_id
                """,
                [change, key, f"{kind}:%"],
            )
            [(account_id, merchant_id, owner)] = cursor.fetchall()
            if owner is None and merchant_id is not None:  # a merchant's shard of a bank account
                cursor.execute(
                    "UPDATE books_accountshard SET balance_minor = balance_minor + %s"
                    " WHERE account_id = %s AND merchant_id = %s",
                    [change, account_id, merchant_id],
                )
            else:
                cursor.execute(
                    "UPDATE books_account SET balance_minor = balance_minor + %s WHERE id = %s",
                    [change, account_id],
                )
            assert cursor.rowcount == 1
