"""Opening accounts and posting balanced journal entries."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.db import connection, transaction
from django.db.models import F

from financing.books.exceptions import (
    AccountCodeClash,
    AccountInvalid,
    JournalCurrencyMismatch,
    JournalInvalid,
    JournalKeyReused,
    JournalLegsTooFew,
    JournalLegZero,
    JournalMerchantsMixed,
    JournalUnbalanced,
)
from financing.books.locks import ACCOUNTS_FOR_UPDATE, accounts_lock
from financing.books.models import Account, AccountShard, JournalEntry, Posting
from ledger.money import MAX_MINOR_UNITS, MoneyError, currency_exponent

_CODE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
_KEY_MAX = JournalEntry._meta.get_field("key").max_length or 255
_MEMO_MAX = JournalEntry._meta.get_field("memo").max_length or 500


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


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a journal entry: debit positive, credit negative, in the account's currency."""

    account: Account
    amount_minor: int


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
    _legs_check(key, memo, legs)
    merchant = _merchant_of(legs, merchant_id)
    fingerprint = _fingerprint(legs)
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
        _legs_check(entry.key, entry.memo, entry.legs)
    if not entries:
        return []
    merchants = [_merchant_of(entry.legs, None) for entry in entries]
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


def _merchant_of(legs: Sequence[Leg], merchant_id: int | None) -> int | None:
    owners = {leg.account.merchant_id for leg in legs} - {None}
    if merchant_id is not None:
        owners.add(merchant_id)
    if len(owners) > 1:
        raise JournalMerchantsMixed(merchant_ids=sorted(o for o in owners if o is not None))
    return next(iter(owners), None)


def _legs_check(key: str, memo: str, legs: Sequence[Leg]) -> None:
    if not isinstance(key, str) or not 0 < len(key) <= _KEY_MAX:
        raise JournalInvalid(f"A journal key is 1 to {_KEY_MAX} characters.")
    if not isinstance(memo, str) or len(memo) > _MEMO_MAX:
        raise JournalInvalid(f"A memo is at most {_MEMO_MAX} characters.")
    if len(legs) < 2:
        raise JournalLegsTooFew(f"A journal entry needs at least 2 legs, not {len(legs)}.")
    totals: dict[str, int] = defaultdict(int)
    for index, leg in enumerate(legs):
        amount = leg.amount_minor
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise JournalInvalid(f"Leg {index}: amounts are integer minor units, not {amount!r}.")
        if amount == 0:
            raise JournalLegZero(f"Leg {index} on {leg.account.code!r} moves nothing.")
        if abs(amount) >= MAX_MINOR_UNITS:
            raise JournalInvalid(f"Leg {index}: {amount} minor units is beyond any real amount.")
        if leg.account.pk is None:
            raise JournalInvalid(f"Leg {index}: account {leg.account.code!r} is not open.")
        totals[leg.account.currency] += amount
    for currency, total in sorted(totals.items()):
        if total != 0:
            raise JournalUnbalanced(currency=currency, total_minor=total)


def _fingerprint(legs: Sequence[Leg]) -> str:
    canonical = sorted([leg.account.code, leg.amount_minor] for leg in legs)
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


def _refusal(post: _Post, known: Mapping[int, tuple[str, int | None]]) -> JournalInvalid | None:
    """The first leg whose account is not what the caller holds (currency, owner), if any."""
    for leg in post.legs:
        currency, owner = known.get(leg.account.pk, (None, None))
        if (currency, owner) != (leg.account.currency, leg.account.merchant_id):
            return _mismatch(leg.account, currency, owner)
    return None


def _mismatch(account: Account, currency: str | None, owner: int | None) -> JournalInvalid:
    if currency is None:
        return JournalInvalid(f"Account {account.code!r} does not exist.")
    if currency != account.currency:
        return JournalCurrencyMismatch(
            account_code=account.code, stated=account.currency, actual=currency
        )
    return JournalInvalid(
        f"Account {account.code!r} is {_owner(owner)}'s, not {_owner(account.merchant_id)}'s;"
        " nothing was written."
    )


def _owner(merchant_id: int | None) -> str:
    return "the bank" if merchant_id is None else f"merchant {merchant_id}"


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
            return _mismatch(account, currency, owner)
        if entry_id is not None:
            return _entry(
                entry_id, post.key, post.merchant_id, post.memo, post.now, post.fingerprint
            )
        cursor.execute(_EXISTING, [post.key])  # a repeat: the original entry, to compare and return
        pk, merchant_id, memo, posted_at, fingerprint = cursor.fetchone()
    return _entry(pk, post.key, merchant_id, memo, posted_at, fingerprint)


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
    prints = {e.key: _fingerprint(e.legs) for e in entries}
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
            return _mismatch(account, actual, account.merchant_id)
        memos = {e.key: e.memo for e in entries}
        posted = {
            key: _entry(pk, key, None, memos[key], now, prints[key])
            for key, pk in zip(new_keys or [], new_ids or [], strict=True)
        }
        repeats = [e.key for e in entries if e.key not in posted]
        if repeats:  # the originals, to compare and return
            cursor.execute(_EXISTING_MANY, [repeats])
            for pk, key, merchant_id, memo, posted_at, fingerprint in cursor.fetchall():
                posted[key] = _entry(pk, key, merchant_id, memo, posted_at, fingerprint)
    for key, entry in posted.items():
        if entry.fingerprint != prints[key]:
            # Inside the block: the batch's new entries may be written, so this must not leave
            # the transaction usable (Django marks it for rollback as the error passes).
            raise JournalKeyReused(key=key)
    return [posted[e.key] for e in entries]


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


def _entry(
    pk: int,
    key: str,
    merchant_id: int | None,
    memo: str,
    posted_at: datetime,
    fingerprint: str,
) -> JournalEntry:
    entry = JournalEntry(
        pk=pk,
        key=key,
        merchant_id=merchant_id,
        memo=memo,
        posted_at=posted_at,
        fingerprint=fingerprint,
    )
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry
