"""Recording what matching proposed: the matches, their items and, for a confirmed match, the
clearing journal entry, its payments booked and the breaks it clears.

The clearing entry, key ``match:<pk>`` (so at most once per match):
payments out: Dr disbursement clearing (payments) / Cr bank cash (entries);
collections: Dr bank cash (entries) / Cr collections clearing (payouts);
an adjustment (entries differ from items) goes to reconciliation differences.

``matches_record`` records a batch of proposals in one transaction, in round trips that do not
grow with the batch: the candidates read at once, the matches and their items inserted at once,
every clearing entry posted in one statement (``journal_entries_post``), the payments booked,
the entries marked and the breaks closed in one statement each. When the batch meets a
concurrent run (the database refuses a second live item) or a payment rejected meanwhile, it
rolls back whole and each proposal is recorded again on its own, so one conflict loses only its
own match. ``match_clear`` clears one match an officer confirmed, the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction

from financing.accounts import Chart
from financing.books.batch_posting import NewJournalEntry, journal_entries_post
from financing.books.models import Account
from financing.books.services import Leg
from financing.exceptions import WrongState
from financing.models import Match, MatchItem, MatchRule, Payment, ReconJob, StatementEntry
from financing.reconciliation.breaks import MatchCleared, breaks_close_by_matches
from financing.reconciliation.matching import DEBITS_TO_PAYMENTS, Proposal
from ledger.models import Payout
from ledger.sql import placeholders
from ledger.writer import rows_insert_returning
from merchants.models import Merchant

# A payment the bank has not shown yet: in a file, or accepted. Pending ones were never sent;
# rejected ones will never show; booked ones showed already.
OPEN_PAYMENTS = [Payment.Status.PENDING, Payment.Status.BATCHED, Payment.Status.ACCEPTED]


@dataclass(frozen=True, slots=True)
class _Candidate:
    """What recording needs of a payment or payout: its amount, and whose it is."""

    amount_minor: int
    merchant_id: int


def matches_record(
    proposals: Sequence[Proposal],
    *,
    entries: Mapping[int, StatementEntry],
    rules: Mapping[int, MatchRule],
    job: ReconJob | None,
    now: datetime,
) -> list[Match | None]:
    """Record ``proposals`` in one transaction: confirmed ones cleared, suggested ones waiting
    for an officer. Returns each one's match, or None where a concurrent run matched one of its
    items first, or a payment of it was rejected since matching read it.

    ``entries`` holds every entry the proposals name, ``rules`` every rule that made them, by id.
    """
    try:
        return _recorded(proposals, entries, rules, job, now)
    except (IntegrityError, WrongState):
        if len(proposals) == 1:
            return [None]
    # Which proposal collided is unknown: each one on its own, so that the others stand.
    return [
        matches_record([p], entries=entries, rules=rules, job=job, now=now)[0] for p in proposals
    ]


def _recorded(
    proposals: Sequence[Proposal],
    entries: Mapping[int, StatementEntry],
    rules: Mapping[int, MatchRule],
    job: ReconJob | None,
    now: datetime,
) -> list[Match | None]:
    found = _candidates(proposals)
    matches = [_match_new(p, entries, found, rules, job, now) for p in proposals]
    with transaction.atomic():
        rows_insert_returning(matches)
        # Every run inserts its items in one order (entries, then payments, then payouts, each
        # by id), so two runs meeting on the live-item unique indexes wait, never deadlock.
        items = sorted(
            (
                i
                for p, m in zip(proposals, matches, strict=True)
                for i in _items(p, m, entries, found)
            ),
            key=_item_order,
        )
        rows_insert_returning(items)
        suggested = [i for p in proposals if not p.confirmed for i in p.entry_ids]
        if suggested:
            StatementEntry.objects.filter(pk__in=suggested).update(
                match_status=StatementEntry.MatchStatus.SUGGESTED
            )
        confirmed = [(p, m) for p, m in zip(proposals, matches, strict=True) if p.confirmed]
        if confirmed:
            _clear(
                [_cleared(p.entry_ids, p.candidate_ids, m) for p, m in confirmed],
                _merchants({m.currency: _one(p, found).merchant_id for p, m in confirmed}),
                now,
            )
    return list(matches)


def _side(source: str) -> str:
    return "payment" if source == DEBITS_TO_PAYMENTS else "payout"


def _candidates(proposals: Sequence[Proposal]) -> dict[tuple[str, int], _Candidate]:
    """Every payment and payout the proposals name, by side and id, in a query per side."""
    found: dict[tuple[str, int], _Candidate] = {}
    for side, model in (("payment", Payment), ("payout", Payout)):
        ids = [i for p in proposals if _side(p.rule.source) == side for i in p.candidate_ids]
        if ids:
            rows = model.objects.filter(pk__in=ids).values_list("pk", "amount_minor", "merchant")
            found.update(
                ((side, pk), _Candidate(amount, merchant)) for pk, amount, merchant in rows
            )
    return found


def _one(proposal: Proposal, found: Mapping[tuple[str, int], _Candidate]) -> _Candidate:
    return found[(_side(proposal.rule.source), proposal.candidate_ids[0])]


def _merchants(ids: Mapping[str, int]) -> dict[str, Merchant]:
    """A merchant per currency, by id, in one query: the clearing opens a chart with one."""
    merchants = Merchant.objects.in_bulk(set(ids.values()))
    return {currency: merchants[pk] for currency, pk in ids.items()}


def _match_new(
    proposal: Proposal,
    entries: Mapping[int, StatementEntry],
    found: Mapping[tuple[str, int], _Candidate],
    rules: Mapping[int, MatchRule],
    job: ReconJob | None,
    now: datetime,
) -> Match:
    side = _side(proposal.rule.source)
    total = sum(entries[i].amount_minor for i in proposal.entry_ids)
    expected = sum(found[(side, i)].amount_minor for i in proposal.candidate_ids)
    return Match(
        rule=rules[proposal.rule.id],
        job=job,
        source=proposal.rule.source,
        status=Match.Status.CONFIRMED if proposal.confirmed else Match.Status.SUGGESTED,
        currency=entries[proposal.entry_ids[0]].currency,
        amount_minor=total,
        expected_minor=expected,
        adjustment_minor=total - expected,
        found_at=now,
        confirmed_at=now if proposal.confirmed else None,
    )


def _item_order(item: MatchItem) -> tuple[int, int]:
    if item.statement_entry_id is not None:
        return (0, item.statement_entry_id)
    if item.payment_id is not None:
        return (1, item.payment_id)
    return (2, item.payout_id or 0)


def _items(
    proposal: Proposal,
    match: Match,
    entries: Mapping[int, StatementEntry],
    found: Mapping[tuple[str, int], _Candidate],
) -> list[MatchItem]:
    side = _side(proposal.rule.source)
    return [
        MatchItem(match=match, amount_minor=entries[i].amount_minor, statement_entry_id=i)
        for i in proposal.entry_ids
    ] + [
        MatchItem(match=match, amount_minor=found[(side, i)].amount_minor, **{f"{side}_id": i})
        for i in proposal.candidate_ids
    ]


def _cleared(entry_ids: Sequence[int], candidate_ids: Sequence[int], match: Match) -> MatchCleared:
    payments = list(candidate_ids) if match.source == DEBITS_TO_PAYMENTS else []
    return MatchCleared(match=match, entry_ids=sorted(entry_ids), payment_ids=sorted(payments))


def match_clear(match: Match, now: datetime) -> None:
    """Post a confirmed match's clearing once (key ``match:<pk>``) and book what it clears.

    Runs inside the confirming transaction, after the status change that makes it happen once.

    :raises WrongState: a payment of it was rejected or booked since it was matched.
    """
    items = list(match.items.select_related("payment__merchant", "payout__merchant"))
    candidates: list[Payment | Payout] = [c for i in items for c in (i.payment, i.payout) if c]
    if not candidates:
        raise WrongState("A match clears at least one payment or payout.")
    entry_ids = [i.statement_entry_id for i in items if i.statement_entry_id is not None]
    cleared = _cleared(entry_ids, [c.pk for c in candidates], match)
    _clear([cleared], {match.currency: candidates[0].merchant}, now)


def _clear(
    cleared: Sequence[MatchCleared], merchants: Mapping[str, Merchant], now: datetime
) -> None:
    """Post each match's clearing entry, book its payments, mark its entries matched and close
    the breaks it clears: a statement each for the whole batch."""
    accounts = _BankAccounts(merchants)
    journal_entries_post(
        entries=[
            NewJournalEntry(
                key=f"match:{c.match.pk}",
                memo=_memo(c.match),
                legs=[
                    Leg(account=accounts.get(c.match.currency, name), amount_minor=amount)
                    for name, amount in _legs(c.match)
                    if amount
                ],
            )
            for c in cleared
        ],
        now=now,
    )
    # A payment names the first entry that shows it (a batch-booked debit shows several).
    entry_of = {pk: c.entry_ids[0] for c in cleared for pk in c.payment_ids}
    if _payments_book(entry_of, now) != len(entry_of):
        # Rejected by a pain.002 (or booked) since the run read it: the bank's statement and
        # its status report disagree, which an officer must look at, not the engine.
        raise WrongState(
            f"A payment of match {', '.join(str(c.match.pk) for c in cleared if c.payment_ids)}"
            " is no longer open: it was rejected or booked."
        )
    StatementEntry.objects.filter(pk__in=[pk for c in cleared for pk in c.entry_ids]).update(
        match_status=StatementEntry.MatchStatus.MATCHED
    )
    breaks_close_by_matches(cleared=cleared, now=now)


def _legs(match: Match) -> list[tuple[str, int]]:
    received, expected = match.amount_minor, match.expected_minor
    if match.source == DEBITS_TO_PAYMENTS:
        # Money left the bank: the payments stop waiting in disbursement clearing.
        return [
            ("disbursement_clearing", expected),
            ("bank_cash", -received),
            ("reconciliation_differences", received - expected),
        ]
    return [
        ("bank_cash", received),
        ("collections_clearing", -expected),
        ("reconciliation_differences", expected - received),
    ]


def _memo(match: Match) -> str:
    kind = "payments out" if match.source == DEBITS_TO_PAYMENTS else "collections"
    return f"Bank statement clears {kind}, rule '{match.rule.name}'"[:200]


class _BankAccounts:
    """The accounts clearing entries move, read once per currency for a whole batch.

    They are all the bank's own (none a merchant's), so one chart per currency serves every
    merchant of the batch; a chart is opened with any merchant of that currency.
    """

    def __init__(self, merchants: Mapping[str, Merchant]) -> None:
        self._charts: dict[str, Chart] = {}
        for currency, merchant in merchants.items():
            self._charts[currency] = Chart(merchant, currency)
            self._charts[currency].prefetch()
        self._opened: dict[tuple[str, str], Account] = {}

    def get(self, currency: str, name: str) -> Account:
        key = (currency, name)
        if key not in self._opened:
            self._opened[key] = getattr(self._charts[currency], name)()
        return self._opened[key]


# Each payment booked with the entry that shows it: one statement for a batch, the entry per
# payment travelling in the VALUES list. Only an open payment is booked (the caller compares the
# row count), said as "neither booked nor rejected": the same rows (statuses are constrained),
# but no condition the status index can serve. Asked for the open ones, the planner (on the
# statistics of a table that just grew) read every open payment through that index, per batch:
# 100,000 entries took 200 scans of up to 100,000 rows. Now the primary key drives it.
_PAYMENTS_BOOK = """
UPDATE financing_payment
SET status = %s, booked_at = %s, statement_entry_id = v.column2
FROM (VALUES {rows}) AS v
WHERE financing_payment.id = v.column1 AND financing_payment.status NOT IN ({closed})
"""
_CLOSED_PAYMENTS = [status for status in Payment.Status if status not in OPEN_PAYMENTS]


def _payments_book(entry_of: Mapping[int, int], now: datetime) -> int:
    """Book the open payments of ``entry_of`` (payment id -> entry id); how many were booked."""
    if not entry_of:
        return 0
    params: list[Any] = [
        Payment.Status.BOOKED.value,
        connection.ops.adapt_datetimefield_value(now),
    ]
    for payment_id, entry_id in entry_of.items():
        params += [payment_id, entry_id]
    params += [status.value for status in _CLOSED_PAYMENTS]
    sql = _PAYMENTS_BOOK.format(
        rows=", ".join(["(%s, %s)"] * len(entry_of)),
        closed=placeholders(len(_CLOSED_PAYMENTS)),
    )
    with connection.cursor() as cursor:
        # The statement holds only placeholders; the values travel as parameters.
        cursor.execute(sql, params)
        return int(cursor.rowcount)
