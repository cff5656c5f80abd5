"""Verification of the books: balances equal their postings, every entry balances, every
posting is its entry's merchant's.

Each check is one set-based statement that returns at most one row, the first problem, so the
database does the summing and memory here does not grow with the books. Each statement reads
one snapshot, and a posting and its balances commit together, so postings going on while the
checks run cannot make sound books look broken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from financing.books.models import BooksVerification
from ledger.money import MoneyError, format_minor_units

_COUNTS = """
SELECT (SELECT count(*) FROM books_account),
       (SELECT count(*) FROM books_journalentry),
       (SELECT count(*) FROM books_posting)
"""
# An entry is sound when it has two postings or more and they sum to zero in every currency.
_FIRST_UNSOUND_ENTRY = """
SELECT e."key", coalesce(n.legs, 0), u.currency, u.total
FROM books_journalentry e
LEFT JOIN (SELECT entry_id, count(*) AS legs FROM books_posting GROUP BY entry_id) n
       ON n.entry_id = e.id
LEFT JOIN (SELECT entry_id, currency, sum(amount_minor) AS total
           FROM books_posting GROUP BY entry_id, currency HAVING sum(amount_minor) <> 0) u
       ON u.entry_id = e.id
WHERE coalesce(n.legs, 0) < 2 OR u.entry_id IS NOT NULL
ORDER BY e.id, u.currency
LIMIT 1
"""
# Only possible behind the composite foreign key's back, but then every sum per currency lies.
_FIRST_FOREIGN_POSTING = """
SELECT e."key", a.code, p.currency, a.currency
FROM books_posting p
JOIN books_account a ON a.id = p.account_id
JOIN books_journalentry e ON e.id = p.entry_id
WHERE p.currency <> a.currency
ORDER BY p.id
LIMIT 1
"""
# Only possible behind the trigger's back (migration 0004), but then shards and the promise that
# a transaction writes one merchant's rows both lie.
_FIRST_MISATTRIBUTED_POSTING = """
SELECT e."key", a.code, p.merchant_id, e.merchant_id, a.merchant_id
FROM books_posting p
JOIN books_account a ON a.id = p.account_id
JOIN books_journalentry e ON e.id = p.entry_id
WHERE p.merchant_id IS DISTINCT FROM e.merchant_id
   OR (a.merchant_id IS NOT NULL AND a.merchant_id IS DISTINCT FROM p.merchant_id)
ORDER BY p.id
LIMIT 1
"""
# Every part of every balance, the first wrong one by account: an account's own balance is the
# sum of its postings, less, for the bank's accounts, the postings of merchants' entries, which
# are in those merchants' shards; each shard is the sum of its merchant's postings to the
# account. A merchant's postings to a bank's account with no shard show as a shard of 0; a shard
# of a merchant's own account is wrong whatever it holds.
_FIRST_WRONG_BALANCE = """
SELECT code, currency, shard_of, owner, balance, total FROM (
    SELECT a.id, a.code, a.currency, NULL AS shard_of, a.merchant_id AS owner,
           a.balance_minor AS balance, coalesce(p.total, 0) AS total
    FROM books_account a
    LEFT JOIN (SELECT p.account_id, sum(p.amount_minor) AS total
               FROM books_posting p JOIN books_account pa ON pa.id = p.account_id
               WHERE pa.merchant_id IS NOT NULL OR p.merchant_id IS NULL
               GROUP BY p.account_id) p
           ON p.account_id = a.id
    WHERE a.balance_minor <> coalesce(p.total, 0)
    UNION ALL
    SELECT a.id, a.code, a.currency, coalesce(s.merchant_id, p.merchant_id), a.merchant_id,
           coalesce(s.balance_minor, 0), coalesce(p.total, 0)
    FROM books_accountshard s
    FULL JOIN (SELECT p.account_id, p.merchant_id, sum(p.amount_minor) AS total
               FROM books_posting p JOIN books_account pa ON pa.id = p.account_id
               WHERE pa.merchant_id IS NULL AND p.merchant_id IS NOT NULL
               GROUP BY p.account_id, p.merchant_id) p
           ON p.account_id = s.account_id AND p.merchant_id = s.merchant_id
    JOIN books_account a ON a.id = coalesce(s.account_id, p.account_id)
    WHERE a.merchant_id IS NOT NULL OR coalesce(s.balance_minor, 0) <> coalesce(p.total, 0)
) wrong
ORDER BY id, shard_of NULLS FIRST
LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class BooksProblem:
    """The first thing found wrong: what (an account code or entry key), expected and found."""

    subject: str
    problem: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem} (expected {self.expected}, found {self.actual})"


@dataclass(frozen=True, slots=True)
class BooksReport:
    accounts: int
    entries: int
    postings: int
    first_problem: BooksProblem | None

    @property
    def intact(self) -> bool:
        return self.first_problem is None


BooksCheck = Callable[[], "BooksProblem | None"]
# Checks of what the journal records against the business that posted it. The books may not
# import that business (an import-linter contract), so the business registers its checks here
# at app-ready time, as financing registers projectors into the ledger's registry: then
# ``verify_books`` and its nightly run, whose outcome officers see, cover them too.
_checks: list[BooksCheck] = []


def books_check_register(check: BooksCheck) -> BooksCheck:
    """Have ``books_verify`` run ``check`` after its own (once, however often registered)."""
    if check not in _checks:
        _checks.append(check)
    return check


def books_verify() -> BooksReport:
    """Check every journal entry and every account balance; report the first problem, if any.

    Entries first (each balances per currency and has two postings or more), then postings'
    currencies and merchants (the entry's; a merchant's account takes only its merchant's),
    then balances (each account's own, and each merchant's shard of the bank's accounts, equals
    the sum of its postings: every part of a balance), then the registered checks
    (``books_check_register``) in the order they registered. Needs no lock.
    """
    counts = _one(_COUNTS) or (0, 0, 0)
    accounts, entries, postings = (int(n) for n in counts)
    problem = (
        _unsound_entry()
        or _foreign_posting()
        or _misattributed_posting()
        or _wrong_balance()
        or _registered()
    )
    return BooksReport(accounts, entries, postings, problem)


def _registered() -> BooksProblem | None:
    for check in _checks:
        problem = check()
        if problem is not None:
            return problem
    return None


def books_verification_run(*, now: datetime) -> BooksVerification:
    """Verify the books and record the run where officers see it, as ledger verifications are."""
    run = BooksVerification.objects.create(started_at=now)
    report = books_verify()
    run.finished_at = timezone.now()  # the real end of the run, however long it took
    run.accounts_checked = report.accounts
    run.entries_checked = report.entries
    run.postings_checked = report.postings
    if report.first_problem is None:
        run.outcome = BooksVerification.Outcome.BALANCED
    else:
        run.outcome = BooksVerification.Outcome.BROKEN
        run.problem = str(report.first_problem)
    run.save()
    return run


def _one(sql: str) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return None if row is None else tuple(row)


def _unsound_entry() -> BooksProblem | None:
    row = _one(_FIRST_UNSOUND_ENTRY)
    if row is None:
        return None
    key, legs, currency, total = row
    if legs < 2:
        return BooksProblem(
            f"journal entry {key!r}", "too few postings", "at least 2 postings", f"{legs}"
        )
    return BooksProblem(
        f"journal entry {key!r}",
        f"postings do not balance in {currency}",
        f"a sum of {_amount(0, currency)}",
        f"{_amount(int(total), currency)}",
    )


def _foreign_posting() -> BooksProblem | None:
    row = _one(_FIRST_FOREIGN_POSTING)
    if row is None:
        return None
    key, code, posted, held = row
    return BooksProblem(
        f"journal entry {key!r}",
        f"a posting to account {code!r} is in another currency than the account",
        held,
        posted,
    )


def _wrong_balance() -> BooksProblem | None:
    row = _one(_FIRST_WRONG_BALANCE)
    if row is None:
        return None
    code, currency, shard_of, owner, balance, total = row
    if shard_of is not None and owner is not None:
        return BooksProblem(
            f"account {code!r}",
            f"a merchant's own account has a shard, of {_merchant(shard_of)}",
            "no shard",
            _amount(int(balance), currency),
        )
    where = "" if shard_of is None else f", in the shard of {_merchant(shard_of)}"
    return BooksProblem(
        f"account {code!r}",
        f"balance differs from the sum of its postings{where}",
        _amount(int(total), currency),
        _amount(int(balance), currency),
    )


def _misattributed_posting() -> BooksProblem | None:
    row = _one(_FIRST_MISATTRIBUTED_POSTING)
    if row is None:
        return None
    key, code, posted, entry, owner = row
    if posted != entry:
        return BooksProblem(
            f"journal entry {key!r}",
            f"a posting to account {code!r} is of another merchant than its entry",
            _merchant(entry),
            _merchant(posted),
        )
    return BooksProblem(
        f"journal entry {key!r}",
        f"a posting to account {code!r} is of another merchant than the account",
        _merchant(owner),
        _merchant(posted),
    )


def _merchant(merchant_id: int | None) -> str:
    return "the bank (no merchant)" if merchant_id is None else f"merchant {merchant_id}"


def _amount(minor: int, currency: str) -> str:
    try:
        return f"{format_minor_units(minor, currency)} {currency} ({minor} minor units)"
    except MoneyError:
        return f"{minor} minor units of {currency!r}"
