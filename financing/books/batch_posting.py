"""A batch of journal entries posted at once: a bank statement's clearings, one entry per match,
hundreds per transaction, in one statement on PostgreSQL (``journal_post``'s checks, locks and
refusals, for many entries)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from financing.books.exceptions import JournalInvalid, JournalKeyReused
from financing.books.legs import (
    Leg,
    account_mismatch,
    entry_posted,
    legs_check,
    legs_fingerprint,
    legs_merchant,
)
from financing.books.locks import ACCOUNTS_FOR_UPDATE
from financing.books.models import JournalEntry
from financing.books.services import journal_post


@dataclass(frozen=True, slots=True)
class NewJournalEntry:
    """One entry of a batch for ``journal_entries_post``: what ``journal_post`` takes for one."""

    key: str
    memo: str
    legs: Sequence[Leg]


def journal_entries_post(
    *, entries: Sequence[NewJournalEntry], now: datetime
) -> list[JournalEntry]:
    """Post many balanced journal entries, each once per its key; return them in that order.

    What ``journal_post`` does for one bank-level entry (legs on the bank's accounts only, as a
    bank statement's clearings are), for a batch (matching a bank statement posts one
    clearing entry per match, hundreds per transaction): each entry is checked alike and keeps
    its own key, memo and postings, while the accounts of the whole batch are locked once, in
    ascending id order, and on PostgreSQL everything is written in one statement. A key repeated
    with the same legs returns its original entry and moves nothing. Joins the caller's
    transaction if there is one.

    :raises JournalLegsTooFew, JournalLegZero, JournalUnbalanced, JournalInvalid: an entry is
        malformed (as for ``journal_post``), or two entries of the batch share a key; nothing
        is written.
    :raises JournalCurrencyMismatch: an account's currency is not the one the caller holds;
        nothing is written.
    :raises JournalKeyReused: a key was used before for other legs. The batch's new entries
        may be written by then: the error leaves the transaction to be rolled back whole.
    """
    keys = [entry.key for entry in entries]
    if len(set(keys)) != len(keys):
        raise JournalInvalid("Each entry of a batch has a key of its own.")
    for entry in entries:
        legs_check(entry.key, entry.memo, entry.legs)
    if not entries:
        return []
    merchants = [legs_merchant(entry.legs, None) for entry in entries]
    if connection.vendor != "postgresql" or any(m is not None for m in merchants):
        # The demo's SQLite has one writer at a time: one entry after another costs nothing
        # that matters there, and single entries and batches share one ORM path. A merchant's
        # entries move its shards of the bank's accounts: journal_post's path. A savepoint (or
        # the transaction) of their own, so a refused entry leaves none of the batch written.
        with transaction.atomic():
            return [journal_post(key=e.key, memo=e.memo, legs=e.legs, now=now) for e in entries]
    with transaction.atomic(savepoint=False):
        outcome = _post_many_postgres(entries, now)
    if isinstance(outcome, JournalInvalid):
        raise outcome
    return outcome


# journal_post's statement for a batch: the same locks first (every account of the batch), the
# same refusal of a foreign leg before anything is written, then the new entries (a repeated key
# inserts nothing), the postings of the entries inserted, and each account moved once by the sum.
_POST_MANY = f"""
WITH locked AS ({ACCOUNTS_FOR_UPDATE}
), leg AS (
    SELECT * FROM unnest(%s::varchar[], %s::bigint[], %s::bigint[], %s::varchar[])
        AS leg ("key", account_id, amount_minor, currency)
), foreign_leg AS (
    SELECT leg.account_id, leg.currency AS stated, locked.currency
    FROM leg LEFT JOIN locked ON locked.id = leg.account_id
    WHERE locked.currency IS DISTINCT FROM leg.currency
    LIMIT 1
), new_entry AS (
    INSERT INTO books_journalentry ("key", memo, posted_at, fingerprint)
    SELECT e."key", e.memo, %s, e.fingerprint
    FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[]) AS e ("key", memo, fingerprint)
    WHERE NOT EXISTS (SELECT FROM foreign_leg)
    ON CONFLICT ("key") DO NOTHING
    RETURNING id, "key"
), new_postings AS (
    INSERT INTO books_posting (entry_id, account_id, amount_minor, currency)
    SELECT new_entry.id, leg.account_id, leg.amount_minor, leg.currency
    FROM new_entry JOIN leg ON leg."key" = new_entry."key"
), moved AS (
    UPDATE books_account AS account SET balance_minor = account.balance_minor + delta.minor
    FROM locked, (
        SELECT leg.account_id, sum(leg.amount_minor)::bigint AS minor
        FROM new_entry JOIN leg ON leg."key" = new_entry."key"
        GROUP BY leg.account_id
    ) AS delta
    WHERE account.id = locked.id AND locked.id = delta.account_id
)
SELECT (SELECT account_id FROM foreign_leg), (SELECT stated FROM foreign_leg),
       (SELECT currency FROM foreign_leg), (SELECT array_agg("key" ORDER BY id) FROM new_entry),
       (SELECT array_agg(id ORDER BY id) FROM new_entry)
"""  # noqa: S608  (ACCOUNTS_FOR_UPDATE is a constant of locks.py, not input)
_EXISTING_MANY = (
    'SELECT id, "key", merchant_id, memo, posted_at, fingerprint FROM books_journalentry'
    ' WHERE "key" = ANY(%s)'
)


def _post_many_postgres(
    entries: Sequence[NewJournalEntry], now: datetime
) -> list[JournalEntry] | JournalInvalid:
    prints = {e.key: legs_fingerprint(e.legs) for e in entries}
    legs = [(e.key, leg) for e in entries for leg in e.legs]
    with connection.cursor() as cursor:
        cursor.execute(
            _POST_MANY,
            [
                sorted({leg.account.pk for _key, leg in legs}),
                [key for key, _leg in legs],
                [leg.account.pk for _key, leg in legs],
                [leg.amount_minor for _key, leg in legs],
                [leg.account.currency for _key, leg in legs],
                now,
                [e.key for e in entries],
                [e.memo for e in entries],
                [prints[e.key] for e in entries],
            ],
        )
        foreign_account_id, stated, actual, new_keys, new_ids = cursor.fetchone()
        if foreign_account_id is not None:
            account = next(
                leg.account
                for _key, leg in legs
                if (leg.account.pk, leg.account.currency) == (foreign_account_id, stated)
            )
            return account_mismatch(account, actual, account.merchant_id)
        memos = {e.key: e.memo for e in entries}
        posted = {
            key: entry_posted(pk, key, None, memos[key], now, prints[key])
            for key, pk in zip(new_keys or [], new_ids or [], strict=True)
        }
        repeats = [e.key for e in entries if e.key not in posted]
        if repeats:  # the originals, to compare and return
            cursor.execute(_EXISTING_MANY, [repeats])
            for pk, key, merchant_id, memo, posted_at, fingerprint in cursor.fetchall():
                posted[key] = entry_posted(pk, key, merchant_id, memo, posted_at, fingerprint)
    for key, entry in posted.items():
        if entry.fingerprint != prints[key]:
            # Inside the block: the batch's new entries may be written, so this must not leave
            # the transaction usable (Django marks it for rollback as the error passes).
            raise JournalKeyReused(key=key)
    return [posted[e.key] for e in entries]
