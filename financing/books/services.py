"""Opening accounts and posting balanced journal entries."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F

from financing.books.exceptions import (
    AccountCodeClash,
    AccountInvalid,
    JournalInvalid,
    JournalKeyReused,
)
from financing.books.legs import Leg as Leg  # journal_post's legs: callers import it from here
from financing.books.legs import (
    account_mismatch,
    entry_posted,
    legs_check,
    legs_fingerprint,
    legs_merchant,
)
from financing.books.locks import ACCOUNTS_FOR_UPDATE, accounts_lock
from financing.books.models import Account, AccountShard, JournalEntry, Posting
from ledger.money import MoneyError, currency_exponent

_CODE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


def account_open(
    *, code: str, name: str, kind: str, currency: str, merchant_id: int | None = None
) -> Account:
    """Open the account ``code``, or return it if it is already open as asked.

    Idempotent: opening the same code again returns the same account (its name is left as it
    was). Safe under concurrency: the unique code decides which of two openers creates it.

    :raises AccountInvalid: unknown kind, not an ISO 4217 currency, or a malformed code.
    :raises AccountCodeClash: the code is open with another kind, currency or merchant.
    """
    if kind not in Account.Kind.values:
        raise AccountInvalid(f"{kind!r} is not an account kind ({', '.join(Account.Kind.values)}).")
    try:
        currency_exponent(currency)
    except MoneyError as exc:
        raise AccountInvalid(str(exc)) from None
    if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
        raise AccountInvalid(f"{code!r} is not an account code (letters, digits, _ . : -).")
    if not name:
        raise AccountInvalid("An account needs a name.")
    account, created = Account.objects.get_or_create(
        code=code,
        defaults={"name": name, "kind": kind, "currency": currency, "merchant_id": merchant_id},
    )
    if not created:
        existing = (account.kind, account.currency, account.merchant_id)
        if existing != (kind, currency, merchant_id):
            raise AccountCodeClash(
                code=code,
                existing=_describe(*existing),
                requested=_describe(kind, currency, merchant_id),
            )
    return account


def _describe(kind: str, currency: str, merchant_id: int | None) -> str:
    owner = f"merchant {merchant_id}" if merchant_id is not None else "the bank"
    return f"{kind} in {currency} of {owner}"


def journal_post(
    *,
    key: str,
    memo: str,
    legs: Sequence[Leg],
    now: datetime,
    merchant_id: int | None = None,
) -> JournalEntry:
    """Post a balanced journal entry and move its accounts' balances, once per ``key``.

    Every entry is one merchant's: ``merchant_id`` if given, else the owner of the merchants'
    accounts among its legs; with neither it is bank-level (no merchant). A merchant's own
    accounts move their own balance; the bank's accounts move that merchant's shard of them, or
    their own balance in a bank-level entry (financing/books/models.py says why).

    Joins the caller's transaction if there is one (the entry then commits or rolls back with
    the business change it records), else runs in its own. Repeating ``key`` with the same
    legs, in any order, and the same merchant returns the original entry and changes nothing.

    :raises JournalLegsTooFew: fewer than two legs.
    :raises JournalLegZero: a leg of zero.
    :raises JournalUnbalanced: the legs do not sum to zero in some currency.
    :raises JournalMerchantsMixed: legs on two merchants' accounts, or on an account of another
        merchant than ``merchant_id``.
    :raises JournalCurrencyMismatch: an account's currency is not the one the caller holds.
    :raises JournalInvalid: a malformed key, memo or amount; an account's owner is not the one
        the caller holds.
    :raises JournalKeyReused: ``key`` was used before for other legs or another merchant.
    """
    legs_check(key, memo, legs)
    merchant = legs_merchant(legs, merchant_id)
    fingerprint = legs_fingerprint(legs)
    own: dict[int, int] = defaultdict(int)  # account id -> what its own balance moves by
    shard: dict[int, int] = defaultdict(int)  # account id -> what the merchant's shard moves by
    for leg in legs:
        sharded = merchant is not None and leg.account.merchant_id is None
        (shard if sharded else own)[leg.account.pk] += leg.amount_minor
    # No savepoint inside a caller's transaction: it would cost two round trips per posting,
    # and every write below is one statement that stands or falls whole. A database error here
    # dooms the caller's transaction, which is right for money. Refusals found in the database
    # are raised after the block, when nothing has been written, so they doom nothing.
    with transaction.atomic(savepoint=False):
        post = _post_postgres if connection.vendor == "postgresql" else _post_orm
        outcome = post(_Post(key, memo, merchant, legs, own, shard, fingerprint, now))
    if isinstance(outcome, JournalInvalid):
        raise outcome
    if outcome.fingerprint != fingerprint or outcome.merchant_id != merchant:
        raise JournalKeyReused(key=key)
    return outcome


@dataclass(frozen=True, slots=True)
class _Post:
    """One entry to post, checked: its legs, and each account's move (own balance or shard)."""

    key: str
    memo: str
    merchant_id: int | None
    legs: Sequence[Leg]
    own: dict[int, int]
    shard: dict[int, int]
    fingerprint: str
    now: datetime


def _refusal(post: _Post, known: Mapping[int, tuple[str, int | None]]) -> JournalInvalid | None:
    """The first leg whose account is not what the caller holds (currency, owner), if any."""
    for leg in post.legs:
        currency, owner = known.get(leg.account.pk, (None, None))
        if (currency, owner) != (leg.account.currency, leg.account.merchant_id):
            return account_mismatch(leg.account, currency, owner)
    return None


# Everything in one statement, one round trip:
# * ``locked`` takes the row locks of the accounts whose own balance moves, in ascending id order
#   (locks.ACCOUNTS_FOR_UPDATE): a merchant's own accounts, or the bank's in a bank-level entry;
# * ``refused`` is the first leg whose account's currency or owner is not what the caller holds;
#   it reads ``known`` and all of ``locked``, and the entry's insert waits on it, so nothing is
#   written before every lock is held (locks.py: the order); if there is one, nothing is
#   inserted, so nothing hangs off the entry either;
# * ``ON CONFLICT ("key")`` makes a repeated key write nothing (the postings and balances hang
#   off the RETURNING of the entry) and waits for a concurrent insert of the same key to end;
# * own balances move by an increment, on rows this statement has locked; the merchant's shards
#   of the bank's accounts are upserted in account id order, which locks them in that order.
_POST = f"""
WITH locked AS ({ACCOUNTS_FOR_UPDATE}
), known AS (
    SELECT id, currency, merchant_id FROM books_account WHERE id = ANY(%s::bigint[])
), refused AS (
    SELECT leg.account_id, known.currency, known.merchant_id
    FROM unnest(%s::bigint[], %s::varchar[], %s::bigint[]) AS leg (account_id, currency, owner)
    LEFT JOIN known ON known.id = leg.account_id
    LEFT JOIN locked ON locked.id = leg.account_id
    WHERE known.currency IS DISTINCT FROM leg.currency
       OR known.merchant_id IS DISTINCT FROM leg.owner
       OR (locked.id IS NULL AND leg.account_id = ANY(%s::bigint[]))
    LIMIT 1
), new_entry AS (
    INSERT INTO books_journalentry ("key", merchant_id, memo, posted_at, fingerprint)
    SELECT %s, %s::bigint, %s, %s, %s WHERE NOT EXISTS (SELECT FROM refused)
    ON CONFLICT ("key") DO NOTHING
    RETURNING id, merchant_id
), new_postings AS (
    INSERT INTO books_posting (entry_id, merchant_id, account_id, amount_minor, currency)
    SELECT new_entry.id, new_entry.merchant_id, leg.account_id, leg.amount_minor, leg.currency
    FROM new_entry, unnest(%s::bigint[], %s::bigint[], %s::varchar[])
         AS leg (account_id, amount_minor, currency)
), moved AS (
    UPDATE books_account AS account SET balance_minor = account.balance_minor + delta.minor
    FROM new_entry, locked, unnest(%s::bigint[], %s::bigint[]) AS delta (account_id, minor)
    WHERE account.id = locked.id AND locked.id = delta.account_id
), sharded AS (
    INSERT INTO books_accountshard AS shard (account_id, merchant_id, balance_minor)
    SELECT delta.account_id, new_entry.merchant_id, delta.minor
    FROM new_entry, unnest(%s::bigint[], %s::bigint[]) AS delta (account_id, minor)
    ORDER BY delta.account_id
    ON CONFLICT (account_id, merchant_id)
    DO UPDATE SET balance_minor = shard.balance_minor + EXCLUDED.balance_minor
)
SELECT (SELECT id FROM new_entry), (SELECT account_id FROM refused),
       (SELECT currency FROM refused), (SELECT merchant_id FROM refused)
"""  # noqa: S608  (ACCOUNTS_FOR_UPDATE is a constant of locks.py, not input)
_EXISTING = (
    'SELECT id, merchant_id, memo, posted_at, fingerprint FROM books_journalentry WHERE "key" = %s'
)


def _post_postgres(post: _Post) -> JournalEntry | JournalInvalid:
    account_ids = [leg.account.pk for leg in post.legs]
    currencies = [leg.account.currency for leg in post.legs]
    own_ids = sorted(post.own)
    shard_ids = sorted(post.shard)
    with connection.cursor() as cursor:
        cursor.execute(
            _POST,
            [
                own_ids,
                account_ids,
                account_ids,
                currencies,
                [leg.account.merchant_id for leg in post.legs],
                own_ids,
                post.key,
                post.merchant_id,
                post.memo,
                post.now,
                post.fingerprint,
                account_ids,
                [leg.amount_minor for leg in post.legs],
                currencies,
                own_ids,
                [post.own[pk] for pk in own_ids],
                shard_ids,
                [post.shard[pk] for pk in shard_ids],
            ],
        )
        entry_id, refused_id, currency, owner = cursor.fetchone()
        if refused_id is not None:
            account = next(leg.account for leg in post.legs if leg.account.pk == refused_id)
            return account_mismatch(account, currency, owner)
        if entry_id is not None:
            return entry_posted(
                entry_id, post.key, post.merchant_id, post.memo, post.now, post.fingerprint
            )
        cursor.execute(_EXISTING, [post.key])  # a repeat: the original entry, to compare and return
        pk, merchant_id, memo, posted_at, fingerprint = cursor.fetchone()
    return entry_posted(pk, post.key, merchant_id, memo, posted_at, fingerprint)


def _post_orm(post: _Post) -> JournalEntry | JournalInvalid:
    """The same writes for databases without the PostgreSQL statement (SQLite, the demo).

    SQLite transactions here are IMMEDIATE (one writer at a time), so the look-up before the
    insert cannot race; the unique key would refuse a second entry anyway.
    """
    accounts_lock(post.own)
    known = {
        pk: (currency, owner)
        for pk, currency, owner in Account.objects.filter(
            pk__in=[leg.account.pk for leg in post.legs]
        ).values_list("pk", "currency", "merchant_id")
    }
    refusal = _refusal(post, known)
    if refusal is not None:
        return refusal
    existing = JournalEntry.objects.filter(key=post.key).first()
    if existing is not None:
        return existing
    entry = JournalEntry.objects.create(
        key=post.key,
        merchant_id=post.merchant_id,
        memo=post.memo,
        posted_at=post.now,
        fingerprint=post.fingerprint,
    )
    Posting.objects.bulk_create(
        Posting(
            entry=entry,
            merchant_id=post.merchant_id,
            account_id=leg.account.pk,
            amount_minor=leg.amount_minor,
            currency=leg.account.currency,
        )
        for leg in post.legs
    )
    for account_id, delta in sorted(post.own.items()):
        Account.objects.filter(pk=account_id).update(balance_minor=F("balance_minor") + delta)
    merchant_id = post.merchant_id
    if merchant_id is not None:  # only a merchant's entry has shards to move
        for account_id, delta in sorted(post.shard.items()):
            shard = AccountShard.objects.filter(account_id=account_id, merchant_id=merchant_id)
            if not shard.update(balance_minor=F("balance_minor") + delta):
                AccountShard.objects.create(
                    account_id=account_id, merchant_id=merchant_id, balance_minor=delta
                )
    return entry
