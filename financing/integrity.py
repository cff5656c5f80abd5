"""Financing integrity: the financing tables agree with the signed chain that records them.

The chain is append-only, hash-linked and covered by signed, witnessed checkpoints; the tables
are not. A database superuser who flips an assignment to released, rolls an advance back or
edits a journal amount leaves ``verify_ledger`` and the books' own sums green. This check reads
the chain as the truth and names the first row that disagrees with it:

- every ``receivable.assigned`` entry has its assignment (same merchant, invoice, advance,
  face) assigned or settled, and every assignment assigned or settled has its entry;
- a settled assignment is closed on the chain too: replaying its ``receivable.settled`` lines
  and dilution ``recourse.raised`` entries leaves the debtor owing nothing;
- every ``advance.disbursed`` entry has its advance with the same amount, fee, reserve and
  currency, in a disbursed, overdue or repaid status (repaid when the chain says so), and
  every advance in such a status has its entry;
- the ``disburse:<advance>`` journal entry posts exactly the chain's amounts, and a
  ``settle:<entry>`` one collects exactly the amount of the payout entry it settles.

It registers into the books' checks (``financing.books.verification``), so ``verify_books`` and
its nightly run report it where officers look; ``manage.py verify_financing`` runs it alone.
Work is per merchant (its chain's capital entries and its rows), so memory follows the largest
merchant, not the bank.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from financing.books.models import JournalEntry, Posting
from financing.books.verification import BooksProblem, books_check_register
from financing.models import Advance, Assignment, assignment_entry_ref
from financing.settlement_models import Recourse
from ledger.models import Entry
from ledger.money import MoneyError, format_minor_units, parse_minor_units
from ledger.verification import ledger_check_register

_CAPITAL_TYPES = (
    "receivable.assigned",
    "advance.disbursed",
    "advance.repaid",
    "receivable.settled",
    "recourse.raised",
)
# Dilution takes off what the debtor owes; late fees left unpaid do not (the debtor never owed
# them to the receivable's face). The chain carries the reason's label.
_DILUTION_LABELS = frozenset(
    str(reason.label) for reason in Recourse.Reason if reason != Recourse.Reason.LATE_FEES
)
_TAKEN = (Assignment.Status.ASSIGNED, Assignment.Status.SETTLED)
_PAID_OUT = (Advance.Status.DISBURSED, Advance.Status.OVERDUE, Advance.Status.REPAID)
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    merchants: int
    assignments: int
    advances: int
    journal_entries: int
    first_problem: BooksProblem | None

    @property
    def intact(self) -> bool:
        return self.first_problem is None


@dataclass(frozen=True, slots=True)
class _Capital:
    """One capital entry of a merchant's chain: where it is and what its body says."""

    seq: int
    type: str
    ref: str
    data: dict[str, Any]

    def minor(self, field: str) -> int:
        return parse_minor_units(str(self.data[field]), self.data["currency"], allow_zero=True)

    @property
    def where(self) -> str:
        return f"chain entry seq {self.seq} ({self.type} {self.ref!r})"


class _Found(Exception):
    def __init__(self, problem: BooksProblem) -> None:
        self.problem = problem


def financing_verify() -> IntegrityReport:
    """Compare assignments, advances and their journal entries with the chain; the first
    disagreement, if any, names the row, the chain entry and both values.

    Reads without locks: each chain entry commits with the rows and journal entry it records,
    so a write going on while this runs cannot make sound tables look broken (a row written
    after this read its merchant is simply not seen).
    """
    counted = {"merchants": 0, "assignments": 0, "advances": 0, "journal_entries": 0}
    try:
        for merchant_id in _merchants():
            counted["merchants"] += 1
            _merchant_check(merchant_id, counted)
        _settlement_journals_check(counted)
    except _Found as found:
        return IntegrityReport(**counted, first_problem=found.problem)
    return IntegrityReport(**counted, first_problem=None)


@books_check_register
def financing_integrity_problem() -> BooksProblem | None:
    """The first disagreement between the financing tables and the chain (a books check)."""
    return financing_verify().first_problem


@ledger_check_register
def financing_integrity_said() -> str | None:
    """The same disagreement in words, for ``verify_ledger`` (a ledger check)."""
    problem = financing_verify().first_problem
    return None if problem is None else f"financing: {problem}"


def _merchants() -> list[int]:
    # Both sides, so a row the chain never recorded is found as surely as a chain entry whose
    # row was changed or deleted.
    on_chain = Entry.objects.filter(type__in=("receivable.assigned", "advance.disbursed"))
    ids = set(on_chain.values_list("chain_id", flat=True).distinct())
    ids.update(Advance.objects.filter(status__in=_PAID_OUT).values_list("merchant_id", flat=True))
    ids.update(Assignment.objects.filter(status__in=_TAKEN).values_list("merchant_id", flat=True))
    return sorted(ids)


def _capital(merchant_id: int) -> list[_Capital]:
    rows = (
        Entry.objects.filter(chain_id=merchant_id, type__in=_CAPITAL_TYPES)
        .order_by("seq")
        .values_list("seq", "type", "external_ref", "body")
    )
    return [
        _Capital(seq, type_, ref, orjson.loads(bytes(body))["data"])
        for seq, type_, ref, body in rows.iterator(chunk_size=_BATCH)
    ]


def _merchant_check(merchant_id: int, counted: dict[str, int]) -> None:
    entries = _capital(merchant_id)
    advances = {a.ref: a for a in Advance.objects.filter(merchant_id=merchant_id)}
    by_pk = {a.pk: a for a in advances.values()}
    assignments = {
        (by_pk[a.advance_id].ref, a.invoice_ref): a
        for a in Assignment.objects.filter(merchant_id=merchant_id)
    }
    counted["advances"] += len(advances)
    counted["assignments"] += len(assignments)
    _assignments_check(entries, assignments, by_pk)
    _advances_check(entries, advances)
    counted["journal_entries"] += _disbursement_journals_check(entries)


def _assignments_check(
    entries: list[_Capital],
    assignments: dict[tuple[str, str], Assignment],
    advances: dict[int, Advance],
) -> None:
    recorded: set[tuple[str, str]] = set()
    for entry in (e for e in entries if e.type == "receivable.assigned"):
        key = (entry.data["advance_ref"], entry.data["invoice_ref"])
        recorded.add(key)
        row = assignments.get(key)
        subject = f"assignment of invoice {key[1]!r} to advance {key[0]!r}"
        if row is None:
            _fail(subject, f"missing, though {entry.where} records it", "a row", "none")
        if row.status not in _TAKEN:
            _fail(
                subject, f"status disagrees with {entry.where}", "assigned or settled", row.status
            )
        face = entry.minor("amount")
        if (row.face_minor, advances[row.advance_id].currency) != (face, entry.data["currency"]):
            _fail(
                subject,
                f"face disagrees with {entry.where}",
                _amount(face, entry.data["currency"]),
                _amount(row.face_minor, advances[row.advance_id].currency),
            )
    for key, row in assignments.items():
        subject = f"assignment of invoice {key[1]!r} to advance {key[0]!r}"
        if row.status in _TAKEN and key not in recorded:
            ref = assignment_entry_ref(invoice_ref=key[1], advance_ref=key[0])
            _fail(subject, f"{row.status} with no receivable.assigned {ref!r} on the chain", "", "")
    owed = _owed_on_chain(entries)
    for key, row in assignments.items():
        if row.status == Assignment.Status.SETTLED and owed.get(key, row.face_minor) != 0:
            left = owed.get(key, row.face_minor)
            currency = advances[row.advance_id].currency
            _fail(
                f"assignment of invoice {key[1]!r} to advance {key[0]!r}",
                "settled, but the chain's payments and dilution leave the debtor owing",
                _amount(0, currency),
                _amount(left, currency),
            )


def _owed_on_chain(entries: Iterable[_Capital]) -> dict[tuple[str, str], int]:
    """What each financed receivable's debtor still owes, replaying the chain in order."""
    owed: dict[tuple[str, str], int] = {}
    for entry in entries:
        advance_ref = entry.data.get("advance_ref")
        key = (str(advance_ref), str(entry.data.get("invoice_ref")))
        if entry.type == "receivable.assigned":
            owed[key] = entry.minor("amount")
        elif entry.type == "receivable.settled" and advance_ref is not None:
            owed[key] = entry.minor("outstanding")  # the waterfall's own figure after the line
        elif entry.type == "recourse.raised" and entry.data["reason"] in _DILUTION_LABELS:
            owed[key] = owed.get(key, 0) - entry.minor("amount")
    return owed


def _advances_check(entries: list[_Capital], advances: dict[str, Advance]) -> None:
    repaid = {e.data["advance_ref"] for e in entries if e.type == "advance.repaid"}
    disbursed = set()
    for entry in (e for e in entries if e.type == "advance.disbursed"):
        ref = entry.data["advance_ref"]
        disbursed.add(ref)
        row = advances.get(ref)
        subject = f"advance {ref!r}"
        if row is None:
            _fail(subject, f"missing, though {entry.where} records it", "a row", "none")
        wanted_status = "repaid" if ref in repaid else "disbursed or overdue"
        if row.status not in _PAID_OUT or (ref in repaid) != (row.status == "repaid"):
            _fail(subject, f"status disagrees with {entry.where}", wanted_status, row.status)
        if row.currency != entry.data["currency"]:
            _fail(subject, f"currency disagrees with {entry.where}", entry.data["currency"], "")
        for field, stored in (
            ("amount", row.advance_minor),
            ("fee", row.fee_minor),
            ("reserve", row.reserve_minor),
        ):
            if stored != entry.minor(field):
                _fail(
                    subject,
                    f"{field} disagrees with {entry.where}",
                    _amount(entry.minor(field), row.currency),
                    _amount(stored, row.currency),
                )
    for ref, row in advances.items():
        if row.status in _PAID_OUT and ref not in disbursed:
            _fail(
                f"advance {ref!r}", f"{row.status} with no advance.disbursed on the chain", "", ""
            )


def _disbursement_journals_check(entries: list[_Capital]) -> int:
    disbursed = {e.data["advance_ref"]: e for e in entries if e.type == "advance.disbursed"}
    keys = {f"disburse:{ref}": entry for ref, entry in disbursed.items()}
    legs = _legs(keys)
    for key, entry in keys.items():
        if key not in legs:
            _fail(f"journal entry {key!r}", f"missing, though {entry.where} records it", "", "")
        amount, fee, reserve = entry.minor("amount"), entry.minor("fee"), entry.minor("reserve")
        wanted = {
            "advances_receivable": amount + reserve,
            "disbursement_clearing": -(amount - fee),
            "unearned_discount": -fee,
            "merchant_reserve_payable": -reserve,
        }
        _legs_agree(key, legs[key], wanted, entry)
    return len(legs)


def _settlement_journals_check(counted: dict[str, int]) -> None:
    """Each ``settle:<entry pk>`` journal entry collects what its payout entry says was paid."""
    journals = JournalEntry.objects.filter(key__startswith="settle:").order_by("id")
    for batch in _batched(journals.values_list("key", flat=True).iterator(chunk_size=_BATCH)):
        counted["journal_entries"] += len(batch)
        payouts = {
            f"settle:{pk}": _Capital(seq, type_, ref, orjson.loads(bytes(body))["data"])
            for pk, seq, type_, ref, body in Entry.objects.filter(
                pk__in=[int(key.split(":", 1)[1]) for key in batch]
            ).values_list("pk", "seq", "type", "external_ref", "body")
        }
        legs = _legs(batch)
        for key in batch:
            payout = payouts.get(key)
            if payout is None or payout.type != "payout.settled":
                _fail(f"journal entry {key!r}", "settles no payout entry", "a payout.settled", "")
            wanted = {"collections_clearing": payout.minor("amount")}
            _legs_agree(key, legs.get(key, {}), wanted, payout, partial=True)


def _legs(keys: Iterable[str]) -> dict[str, dict[str, int]]:
    """Each journal entry's postings summed per account kind (the code before its first ':')."""
    legs: dict[str, dict[str, int]] = {}
    postings = Posting.objects.filter(entry__key__in=list(keys)).values_list(
        "entry__key", "account__code", "amount_minor"
    )
    for key, code, amount in postings:
        sums = legs.setdefault(key, defaultdict(int))
        sums[code.split(":", 1)[0]] += amount
    return legs


def _legs_agree(
    key: str,
    found: dict[str, int],
    wanted: dict[str, int],
    entry: _Capital,
    *,
    partial: bool = False,
) -> None:
    currency = entry.data["currency"]
    kinds = wanted.keys() if partial else sorted(set(wanted) | set(found))
    for kind in kinds:
        if found.get(kind, 0) != wanted.get(kind, 0):
            _fail(
                f"journal entry {key!r}",
                f"posts to {kind} other than {entry.where} records",
                _amount(wanted.get(kind, 0), currency),
                _amount(found.get(kind, 0), currency),
            )


def _batched(keys: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _fail(subject: str, problem: str, expected: str, actual: str) -> NoReturn:
    raise _Found(BooksProblem(subject, problem, expected or "agreement", actual or "none"))


def _amount(minor: int, currency: str) -> str:
    try:
        return f"{format_minor_units(minor, currency)} {currency}"
    except MoneyError:
        return f"{minor} minor units of {currency!r}"
