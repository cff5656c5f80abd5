"""Bank statements matched to Chainfin's payments and payouts, and the clearing they post.

``statement_match`` reads the booked statement entries no live match holds yet, the payments
the bank has not shown yet and the payouts that came to the bank (those settlement applied),
runs the active ``MatchRule`` rows through ``financing.reconciliation.matching``, and records:

- a confirmed match (exact, under an auto-confirming rule): its clearing journal entry posted
  and its payments booked, in the transaction of its batch;
- a suggested match (within tolerance, or under a rule that only suggests): nothing posted
  until an officer confirms or rejects it (``financing.reconciliation.decisions``);
- a break ``ambiguous_match`` for an entry several candidates fit, ``unmatched_statement_entry``
  for one nothing fits, and ``payment_not_on_statement`` for a payment sent more than
  ``RECON_PAYMENT_STATEMENT_DAYS`` days ago that no statement shows.

Matches are recorded ``RECON_MATCH_BATCH`` to a transaction, breaks as many to a statement
(``financing.reconciliation.clearing`` says how, and what the clearing entry posts), and the
progress is told once per batch. Running it again changes nothing: matched items are no longer
open, breaks are once per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from django.conf import settings
from django.db.models import Exists, OuterRef

from financing.models import (
    Break,
    Match,
    MatchItem,
    MatchRule,
    Payment,
    ReconJob,
    SettlementWork,
    StatementEntry,
)
from financing.reconciliation.breaks import break_new, break_open, breaks_open
from financing.reconciliation.clearing import OPEN_PAYMENTS, matches_record
from financing.reconciliation.matching import (
    CREDITS_TO_PAYOUTS,
    DEBITS_TO_PAYMENTS,
    Ambiguity,
    CandidateFacts,
    EntryFacts,
    match_entries,
)
from financing.reconciliation.rules import rule_spec
from ledger.models import Payout
from ledger.money import format_minor_units

_SENT_PAYMENTS = [Payment.Status.BATCHED, Payment.Status.ACCEPTED]
_T = TypeVar("_T")


@dataclass(frozen=True)
class MatchRun:
    """What one run found: matches by status, and the breaks it opened."""

    confirmed: int
    suggested: int
    ambiguous: int
    unmatched: int
    not_on_statement: int


class MatchProgress(Protocol):
    """Told of each batch decided: its entries, and whether they were matched.

    ``every``: the most entries it wants to hear of at once; no batch is larger.
    """

    every: int

    def __call__(self, entry_ids: Sequence[int], *, matched: bool) -> None: ...


def statement_match(
    *, now: datetime, job_id: int | None = None, progress: MatchProgress | None = None
) -> MatchRun:
    """Match every open booked statement entry under the active rules; record what it finds.

    ``job_id`` names the statement import that asked for the run: its matches and breaks are
    recorded on that job; ``progress`` hears of the entries decided, batch by batch. Safe to
    run twice or at once: an item is in one live match at most (the database refuses a second),
    and each break is recorded once. A confirmed match closes the open breaks it clears
    (``breaks_close_by_matches``).
    """
    job = ReconJob.objects.get(pk=job_id) if job_id is not None else None
    rules = {r.pk: r for r in MatchRule.objects.filter(active=True)}
    entries = _open_entries()
    outcome = match_entries(
        entries=[_entry_facts(e) for e in entries.values()],
        candidates={
            DEBITS_TO_PAYMENTS: [_payment_facts(p) for p in _open_payments()],
            CREDITS_TO_PAYOUTS: [_payout_facts(p) for p in _open_payouts()],
        },
        rules=[rule_spec(r) for r in rules.values()],
    )
    size = settings.RECON_MATCH_BATCH
    if progress is not None:
        size = min(size, progress.every)
    confirmed = suggested = 0
    for batch in _batches(outcome.proposals, size):
        recorded = list(
            zip(
                batch,
                matches_record(batch, entries=entries, rules=rules, job=job, now=now),
                strict=True,
            )
        )
        statuses = [m.status for _p, m in recorded if m is not None]
        confirmed += statuses.count(Match.Status.CONFIRMED)
        suggested += statuses.count(Match.Status.SUGGESTED)
        if progress is not None:
            # A proposal another run matched first is decided too, but not matched by this one.
            for matched in (True, False):
                ids = [i for p, m in recorded if (m is not None) == matched for i in p.entry_ids]
                if ids:
                    progress(ids, matched=matched)
    found = [_ambiguity_break(a, entries[a.entry_id], job, now) for a in outcome.ambiguities]
    found += [_unmatched_break(entries[i], job, now) for i in outcome.unmatched]
    for breaks in _batches(found, size):
        breaks_open(breaks=breaks)
        if progress is not None:
            progress([b.detail["entry"] for b in breaks], matched=False)
    return MatchRun(
        confirmed=confirmed,
        suggested=suggested,
        ambiguous=len(outcome.ambiguities),
        unmatched=len(outcome.unmatched),
        not_on_statement=_payments_not_on_statement(now, job),
    )


def _batches(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _open_entries() -> dict[int, StatementEntry]:
    live = MatchItem.objects.filter(statement_entry=OuterRef("pk"))
    # An entry an officer took a match away from is theirs to resolve; the engine stops
    # guessing at it (else the next run would suggest the rejected match again).
    rows = (
        StatementEntry.objects.filter(booked=True)
        .exclude(Exists(live))
        .select_related("statement")
        .order_by("pk")
    )
    return {e.pk: e for e in rows}


def _open_payments() -> Sequence[Payment]:
    live = MatchItem.objects.filter(payment=OuterRef("pk"), live=True)
    return list(Payment.objects.filter(status__in=OPEN_PAYMENTS).exclude(Exists(live)))


def _open_payouts() -> Sequence[Payout]:
    # A payout came to the bank when settlement has work for it (the merchant is financed in
    # its currency); others went straight to the merchant and no bank statement shows them.
    came = SettlementWork.objects.filter(
        entry_id=OuterRef("entry_id"), kind=SettlementWork.Kind.PAYOUT
    )
    live = MatchItem.objects.filter(payout=OuterRef("pk"), live=True)
    return list(Payout.objects.filter(Exists(came)).exclude(Exists(live)))


def _entry_facts(entry: StatementEntry) -> EntryFacts:
    ids = [*entry.end_to_end_ids, *(d.get("end_to_end_id") or "" for d in entry.details)]
    refs = [*entry.references, *(d.get("reference") or "" for d in entry.details)]
    return EntryFacts(
        id=entry.pk,
        direction=entry.direction,
        amount_minor=entry.amount_minor,
        currency=entry.currency,
        value_on=entry.value_date or entry.booking_date or entry.statement.created_at.date(),
        end_to_end_ids=tuple(dict.fromkeys(i for i in ids if i)),
        references=tuple(dict.fromkeys(r for r in refs if r)),
    )


def _payment_facts(payment: Payment) -> CandidateFacts:
    cause = payment.source_key.split(":", 1)[-1]  # the advance ref, or the journal key
    return CandidateFacts(
        id=payment.pk,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        on=payment.created_at.date(),
        end_to_end_id=payment.end_to_end_id,
        references=(payment.end_to_end_id, payment.source_key, cause),
    )


def _payout_facts(payout: Payout) -> CandidateFacts:
    return CandidateFacts(
        id=payout.pk,
        amount_minor=payout.amount_minor,
        currency=payout.currency,
        on=payout.settled_on,
        references=(payout.ref,),
    )


def entry_signed_minor(entry: StatementEntry) -> int:
    return entry.amount_minor if entry.direction == "credit" else -entry.amount_minor


def _ambiguity_break(
    ambiguity: Ambiguity, entry: StatementEntry, job: ReconJob | None, now: datetime
) -> Break:
    kind = "payment" if ambiguity.rule.source == DEBITS_TO_PAYMENTS else "payout"
    return entry_break(
        entry,
        kind=Break.Kind.AMBIGUOUS_MATCH,
        job=job,
        now=now,
        detail={
            "entry": entry.pk,
            "rule": ambiguity.rule.id,
            "rule_name": ambiguity.rule.name,
            "candidate_kind": kind,
            "options": [list(option) for option in ambiguity.options],
        },
    )


def _unmatched_break(entry: StatementEntry, job: ReconJob | None, now: datetime) -> Break:
    return entry_break(
        entry,
        kind=Break.Kind.UNMATCHED_STATEMENT_ENTRY,
        job=job,
        now=now,
        detail={"entry": entry.pk, "statement": str(entry.statement), "line": entry.line},
    )


def entry_break(
    entry: StatementEntry, *, kind: str, job: ReconJob | None, now: datetime, detail: dict[str, Any]
) -> Break:
    """The break, unsaved, of a statement entry left unmatched (``kind`` says how)."""
    return break_new(
        kind=kind,
        key=f"entry:{entry.pk}",
        now=now,
        job=job,
        currency=entry.currency,
        amount_minor=entry_signed_minor(entry),
        reference=" ".join([*entry.end_to_end_ids, *entry.references]),
        detail=detail,
    )


def _payments_not_on_statement(now: datetime, job: ReconJob | None) -> int:
    cutoff = now - timedelta(days=settings.RECON_PAYMENT_STATEMENT_DAYS)
    live = MatchItem.objects.filter(payment=OuterRef("pk"), live=True)
    late = (
        Payment.objects.filter(status__in=_SENT_PAYMENTS, created_at__lt=cutoff)
        .exclude(Exists(live))
        .select_related("merchant")
        .order_by("pk")
    )
    count = 0
    for payment in late:
        _brk, created = break_open(
            break_new(
                kind=Break.Kind.PAYMENT_NOT_ON_STATEMENT,
                key=f"payment:{payment.pk}",
                now=now,
                job=job,
                merchant=payment.merchant,
                currency=payment.currency,
                expected_minor=payment.amount_minor,
                reference=payment.end_to_end_id,
                detail={
                    "payment": payment.pk,
                    "kind": payment.kind,
                    "sent": f"{payment.created_at:%Y-%m-%d}",
                    "amount": format_minor_units(payment.amount_minor, payment.currency),
                },
            )
        )
        count += created
    return count
