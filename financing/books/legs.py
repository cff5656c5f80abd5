"""A journal entry's legs, checked before anything is written: what ``journal_post`` and
``journal_entries_post`` both refuse, and the entry they return."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.db import connection

from financing.books.exceptions import (
    JournalCurrencyMismatch,
    JournalInvalid,
    JournalLegsTooFew,
    JournalLegZero,
    JournalMerchantsMixed,
    JournalUnbalanced,
)
from financing.books.models import Account, JournalEntry
from ledger.money import MAX_MINOR_UNITS

_KEY_MAX = JournalEntry._meta.get_field("key").max_length or 255
_MEMO_MAX = JournalEntry._meta.get_field("memo").max_length or 500


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a journal entry: debit positive, credit negative, in the account's currency."""

    account: Account
    amount_minor: int


def legs_merchant(legs: Sequence[Leg], merchant_id: int | None) -> int | None:
    """The merchant whose entry this is: ``merchant_id``, else its accounts' owner; None for the
    bank's own. Refuses legs of two merchants."""
    owners = {leg.account.merchant_id for leg in legs} - {None}
    if merchant_id is not None:
        owners.add(merchant_id)
    if len(owners) > 1:
        raise JournalMerchantsMixed(merchant_ids=sorted(o for o in owners if o is not None))
    return next(iter(owners), None)


def legs_check(key: str, memo: str, legs: Sequence[Leg]) -> None:
    """Refuse a malformed key or memo, fewer than two legs, a zero or non-integer leg, an account
    not open, or legs that do not balance in some currency."""
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


def legs_fingerprint(legs: Sequence[Leg]) -> str:
    """The legs in any order, hashed: tells a repeated key's legs from other legs."""
    canonical = sorted([leg.account.code, leg.amount_minor] for leg in legs)
    return hashlib.sha256(orjson.dumps(canonical)).hexdigest()


def account_mismatch(account: Account, currency: str | None, owner: int | None) -> JournalInvalid:
    """Why ``account`` as the caller holds it is not the stored one (``currency`` None: none is)."""
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


def entry_posted(
    pk: int,
    key: str,
    merchant_id: int | None,
    memo: str,
    posted_at: datetime,
    fingerprint: str,
) -> JournalEntry:
    """The entry as stored, built from what the posting statement returned."""
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
