"""The matching engine's pure core: bank statement entries against Chainfin's own records.

Modelled on a bank's transaction matching (Oracle Account Reconciliation's auto match): rules
are evaluated one after another in their documented order (``order``, then id), the most
precise first; what a rule matches is no longer open to the rules after it. Each rule names

- its *kind*, how many items on each side: ``one_to_one`` (one entry, one payment or payout),
  ``one_to_many`` (one entry, every item its end-to-end ids or references name, compared as a
  total: a batch-booked debit of several payments, one credit for a payout of many
  receivables), ``many_to_one`` (several entries naming one item, compared as a total: a payout
  paid in instalments);
- its *source*: statement debits against payments out, or statement credits against payouts;
- its *keys*, the fields that must be equal: ``end_to_end_id``, ``reference`` (any of the
  entry's references or remittance words equals one of the item's), ``amount`` (exactly, the
  tolerance is then ignored), ``currency`` (always required in fact: no match crosses
  currencies);
- an amount tolerance (absolute minor units or basis points of the expected amount, the larger
  applies) and a value-date tolerance (the entry's value date may be up to ``days_before``
  days before the item's date and ``days_after`` days after it).

A match that is exact (no adjustment) under a rule that may confirm is *confirmed*; one within
tolerance is *suggested* with the adjustment it needs (entry total minus items total), and only an
officer confirms it. When more than one candidate fits an entry, or one candidate fits more
than one entry, the result is *ambiguous*: nothing is matched, the entries leave the open set
(no weaker rule guesses after a stronger one could not decide) and an officer chooses.

Nothing here touches the database: the caller turns rows into these facts and the outcome into
rows (``financing.reconciliation.engine``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

ONE_TO_ONE = "one_to_one"
ONE_TO_MANY = "one_to_many"
MANY_TO_ONE = "many_to_one"

DEBITS_TO_PAYMENTS = "debit_payments"
CREDITS_TO_PAYOUTS = "credit_payouts"
DIRECTION_OF = {DEBITS_TO_PAYMENTS: "debit", CREDITS_TO_PAYOUTS: "credit"}

END_TO_END_ID = "end_to_end_id"
REFERENCE = "reference"
AMOUNT = "amount"
CURRENCY = "currency"
KEYS = (END_TO_END_ID, REFERENCE, AMOUNT, CURRENCY)
IDENTIFYING = (END_TO_END_ID, REFERENCE)

BASIS_POINTS = 10_000
# ISO 20022 says "NOTPROVIDED" where a payer gave no end-to-end id: it identifies nothing.
_NOT_PROVIDED = "NOTPROVIDED"
_WORD = re.compile(r"[A-Z0-9][A-Z0-9\-_/.]*[A-Z0-9]|[A-Z0-9]")


def reference_words(texts: Iterable[str]) -> frozenset[str]:
    """Every reference and remittance text as a whole and word by word, compared uppercase."""
    words: set[str] = set()
    for text in texts:
        upper = " ".join(text.upper().split())
        if upper:
            words.add(upper)
            words.update(_WORD.findall(upper))
    return frozenset(words)


@dataclass(frozen=True)
class RuleSpec:
    """One match rule as the engine evaluates it (the ``MatchRule`` row's fields)."""

    id: int
    name: str
    order: int
    kind: str
    source: str
    keys: frozenset[str]
    tolerance_minor: int = 0
    tolerance_bps: int = 0
    days_before: int = 0
    days_after: int = 0
    auto_confirm: bool = True

    def allowed_minor(self, expected_minor: int) -> int:
        """The largest difference this rule tolerates against ``expected_minor``."""
        if AMOUNT in self.keys:
            return 0
        # Floor, not rounding: a tolerance is a limit, and a limit is never exceeded by rounding.
        return max(self.tolerance_minor, abs(expected_minor) * self.tolerance_bps // BASIS_POINTS)


@dataclass(frozen=True)
class EntryFacts:
    """What a bank statement entry says, as matching reads it."""

    id: int
    direction: str
    amount_minor: int
    currency: str
    value_on: date
    end_to_end_ids: tuple[str, ...] = ()
    references: tuple[str, ...] = ()

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(
            i.strip() for i in self.end_to_end_ids if i.strip() not in ("", _NOT_PROVIDED)
        )

    @property
    def words(self) -> frozenset[str]:
        return reference_words(self.references)


@dataclass(frozen=True)
class CandidateFacts:
    """A payment out or a payout, as matching reads it; ``on`` is the date it was sent."""

    id: int
    amount_minor: int
    currency: str
    on: date
    end_to_end_id: str = ""
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Proposal:
    """Entries and candidates that fit one rule; ``adjustment_minor``: entries minus candidates."""

    rule: RuleSpec
    entry_ids: tuple[int, ...]
    candidate_ids: tuple[int, ...]
    adjustment_minor: int
    confirmed: bool


@dataclass(frozen=True)
class Ambiguity:
    """An entry one rule could not decide for: each option is a candidate set that fits it."""

    rule: RuleSpec
    entry_id: int
    options: tuple[tuple[int, ...], ...]


@dataclass
class Outcome:
    proposals: list[Proposal] = field(default_factory=list)
    ambiguities: list[Ambiguity] = field(default_factory=list)
    unmatched: list[int] = field(default_factory=list)


def rules_ordered(rules: Iterable[RuleSpec]) -> list[RuleSpec]:
    """The documented evaluation order: ``order`` ascending, then the rule's id."""
    return sorted(rules, key=lambda r: (r.order, r.id))


def match_entries(
    *,
    entries: Sequence[EntryFacts],
    candidates: dict[str, Sequence[CandidateFacts]],
    rules: Iterable[RuleSpec],
) -> Outcome:
    """Match ``entries`` against ``candidates`` (per rule source) under ``rules``, in order.

    Deterministic: the same facts and rules give the same outcome, whatever order they come in.
    """
    outcome = _Run(entries, candidates)
    for rule in rules_ordered(rules):
        outcome.apply(rule)
    outcome.result.unmatched = sorted(outcome.open_entries)
    return outcome.result


class _Run:
    def __init__(
        self, entries: Sequence[EntryFacts], candidates: dict[str, Sequence[CandidateFacts]]
    ) -> None:
        self.entries = {e.id: e for e in entries}
        self.open_entries = set(self.entries)
        self.pools = {source: {c.id: c for c in rows} for source, rows in candidates.items()}
        self.open_candidates = {source: set(pool) for source, pool in self.pools.items()}
        self.result = Outcome()

    def apply(self, rule: RuleSpec) -> None:
        if rule.source not in DIRECTION_OF:
            return
        direction = DIRECTION_OF[rule.source]
        entries = [
            self.entries[i]
            for i in sorted(self.open_entries)
            if self.entries[i].direction == direction
        ]
        pool = self.pools.get(rule.source, {})
        open_ids = self.open_candidates.setdefault(rule.source, set())
        candidates = [pool[i] for i in sorted(open_ids)]
        if not entries or not candidates:
            return
        index = _Index(candidates)
        if rule.kind == ONE_TO_ONE:
            self._one_to_one(rule, entries, index)
        elif rule.kind == ONE_TO_MANY:
            self._one_to_many(rule, entries, index)
        elif rule.kind == MANY_TO_ONE:
            self._many_to_one(rule, entries, index)

    def _one_to_one(self, rule: RuleSpec, entries: list[EntryFacts], index: _Index) -> None:
        fits: dict[int, list[int]] = {}
        claimed: dict[int, list[int]] = defaultdict(list)
        for entry in entries:
            found = [
                c.id
                for c in index.named_by(rule, entry)
                if _fits(rule, entry.amount_minor, entry.value_on, entry.currency, [c])
            ]
            if found:
                fits[entry.id] = found
                for cid in found:
                    claimed[cid].append(entry.id)
        for entry_id, found in fits.items():
            if len(found) > 1 or len(claimed[found[0]]) > 1:
                self._ambiguous(rule, entry_id, [(cid,) for cid in found])
                continue
            entry = self.entries[entry_id]
            candidate = index.by_id[found[0]]
            self._propose(rule, [entry], [candidate])

    def _one_to_many(self, rule: RuleSpec, entries: list[EntryFacts], index: _Index) -> None:
        if not rule.keys & set(IDENTIFYING):
            return  # without a key naming the items, "some subset sums up" is a guess
        sets: dict[int, list[CandidateFacts]] = {}
        claimed: dict[int, list[int]] = defaultdict(list)
        for entry in entries:
            named = index.named_by(rule, entry)
            if not named or (END_TO_END_ID in rule.keys and len(named) != len(entry.ids)):
                continue  # a batch with an item not (or no longer) open is no match
            if _fits(rule, entry.amount_minor, entry.value_on, entry.currency, named):
                sets[entry.id] = named
                for c in named:
                    claimed[c.id].append(entry.id)
        for entry_id, named in sets.items():
            if any(len(claimed[c.id]) > 1 for c in named):
                self._ambiguous(rule, entry_id, [tuple(c.id for c in named)])
                continue
            self._propose(rule, [self.entries[entry_id]], named)

    def _many_to_one(self, rule: RuleSpec, entries: list[EntryFacts], index: _Index) -> None:
        if not rule.keys & set(IDENTIFYING):
            return
        naming: dict[int, list[EntryFacts]] = defaultdict(list)
        for entry in entries:
            named = index.named_by(rule, entry)
            if len(named) == 1:  # an entry naming two items is no instalment of one
                naming[named[0].id].append(entry)
        for cid in sorted(naming):
            group = naming[cid]
            if len(group) < 2:
                continue  # one entry for one item is the one-to-one rules' business
            candidate = index.by_id[cid]
            total = sum(e.amount_minor for e in group)
            if all(_fits(rule, total, e.value_on, e.currency, [candidate]) for e in group):
                self._propose(rule, group, [candidate])

    def _propose(
        self, rule: RuleSpec, entries: Sequence[EntryFacts], candidates: Sequence[CandidateFacts]
    ) -> None:
        adjustment = sum(e.amount_minor for e in entries) - sum(c.amount_minor for c in candidates)
        self.result.proposals.append(
            Proposal(
                rule=rule,
                entry_ids=tuple(sorted(e.id for e in entries)),
                candidate_ids=tuple(sorted(c.id for c in candidates)),
                adjustment_minor=adjustment,
                confirmed=adjustment == 0 and rule.auto_confirm,
            )
        )
        self.open_entries.difference_update(e.id for e in entries)
        self.open_candidates[rule.source].difference_update(c.id for c in candidates)

    def _ambiguous(self, rule: RuleSpec, entry_id: int, options: list[tuple[int, ...]]) -> None:
        self.result.ambiguities.append(
            Ambiguity(rule=rule, entry_id=entry_id, options=tuple(sorted(options)))
        )
        # Every entry in a tie records its own ambiguity, and leaves the open set, so no weaker
        # rule later picks one side of it as if the question were settled.
        self.open_entries.discard(entry_id)


class _Index:
    """The open candidates of one source, looked up by end-to-end id, reference or amount."""

    def __init__(self, candidates: list[CandidateFacts]) -> None:
        self.by_id = {c.id: c for c in candidates}
        self.by_e2e: dict[str, list[CandidateFacts]] = defaultdict(list)
        self.by_word: dict[str, list[CandidateFacts]] = defaultdict(list)
        self.by_currency: dict[str, list[CandidateFacts]] = defaultdict(list)
        self.by_amount: dict[tuple[str, int], list[CandidateFacts]] = defaultdict(list)
        for c in candidates:
            if c.end_to_end_id:
                self.by_e2e[c.end_to_end_id].append(c)
            for word in {" ".join(r.upper().split()) for r in c.references if r.strip()}:
                self.by_word[word].append(c)
            self.by_currency[c.currency].append(c)
            self.by_amount[(c.currency, c.amount_minor)].append(c)

    def named_by(self, rule: RuleSpec, entry: EntryFacts) -> list[CandidateFacts]:
        """The candidates the entry names under the rule's identifying keys, in id order."""
        found: dict[int, CandidateFacts] | None = None
        if END_TO_END_ID in rule.keys:
            found = {c.id: c for i in entry.ids for c in self.by_e2e.get(i, ())}
        if REFERENCE in rule.keys:
            by_ref = {c.id: c for w in entry.words for c in self.by_word.get(w, ())}
            found = by_ref if found is None else {k: v for k, v in found.items() if k in by_ref}
        if found is None and AMOUNT in rule.keys:  # the exact amount is the only key left
            return list(self.by_amount.get((entry.currency, entry.amount_minor), ()))
        if found is None:  # no identifying key: every open candidate in the currency
            return list(self.by_currency.get(entry.currency, ()))
        return [found[k] for k in sorted(found)]


def _date_fits(rule: RuleSpec, value_on: date, candidate_on: date) -> bool:
    earliest = candidate_on - timedelta(days=rule.days_before)
    latest = candidate_on + timedelta(days=rule.days_after)
    return earliest <= value_on <= latest


def _fits(
    rule: RuleSpec,
    entries_total: int,
    value_on: date,
    currency: str,
    candidates: Sequence[CandidateFacts],
) -> bool:
    if any(c.currency != currency for c in candidates):
        return False
    total = sum(c.amount_minor for c in candidates)
    if abs(entries_total - total) > rule.allowed_minor(total):
        return False
    return all(_date_fits(rule, value_on, c.on) for c in candidates)
