"""Bank statements matched to Chainfin's payments and payouts, and the clearing they post.

``statement_match`` reads the booked statement entries no live match holds yet, the payments
the bank has not shown yet and the payouts that came to the bank (those settlement applied),
runs the active ``MatchRule`` rows through ``financing.reconciliation.matching``, and records:

- a confirmed match (exact, under an auto-confirming rule): its clearing journal entry posted
  and its payments booked, in the match's transaction;
- a suggested match (within tolerance, or under a rule that only suggests): nothing posted
  until an officer confirms or rejects it (``financing.reconciliation.decisions``);
- a break ``ambiguous_match`` for an entry several candidates fit, ``unmatched_statement_entry``
  for one nothing fits, and ``payment_not_on_statement`` for a payment sent more than
  ``RECON_PAYMENT_STATEMENT_DAYS`` days ago that no statement shows.

The clearing entry, key ``match:<pk>`` (so at most once per match):
payments out: Dr disbursement clearing (payments) / Cr bank cash (entries);
collections: Dr bank cash (entries) / Cr collections clearing (payouts);
an adjustment (entries differ from items) goes to reconciliation differences.
Running it again changes nothing: matched items are no longer open, breaks are once per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from financing.accounts import Chart
from financing.books.services import Leg, journal_post
from financing.exceptions import WrongState
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
from financing.reconciliation.breaks import break_open, breaks_close_by_match
from financing.reconciliation.matching import (
    CREDITS_TO_PAYOUTS,
    DEBITS_TO_PAYMENTS,
    Ambiguity,
    CandidateFacts,
    EntryFacts,
    Proposal,
    match_entries,
)
from financing.reconciliation.rules import rule_spec
from ledger.models import Payout
from ledger.money import format_minor_units
from merchants.models import Merchant

# A payment the bank has not shown yet: in a file, or accepted. Pending ones were never sent;
# rejected ones will never show; booked ones showed already.
_OPEN_PAYMENTS = [Payment.Status.PENDING, Payment.Status.BATCHED, Payment.Status.ACCEPTED]
_SENT_PAYMENTS = [Payment.Status.BATCHED, Payment.Status.ACCEPTED]


@dataclass(frozen=True)
class MatchRun:
    """What one run found: matches by status, and the breaks it opened."""

    confirmed: int
    suggested: int
    ambiguous: int
    unmatched: int
    not_on_statement: int


class MatchProgress(Protocol):
    """Told of each decision: the entries it decided, and whether they were matched."""

    def __call__(self, entry_ids: Sequence[int], *, matched: bool) -> None: ...


def statement_match(
    *, now: datetime, job_id: int | None = None, progress: MatchProgress | None = None
) -> MatchRun:
    """Match every open booked statement entry under the active rules; record what it finds.

    ``job_id`` names the statement import that asked for the run: its matches and breaks are
    recorded on that job; ``progress`` hears of each entry decided. Safe to run twice or at
    once: an item is in one live match at most (the database refuses a second), and each break
    is recorded once. A confirmed match closes the open breaks it clears
    (``breaks_close_by_match``).
    """
    job = ReconJob.objects.get(pk=job_id) if job_id is not None else None
    rules = [rule_spec(r) for r in MatchRule.objects.filter(active=True)]
    entries = _open_entries()
    outcome = match_entries(
        entries=[_entry_facts(e) for e in entries.values()],
        candidates={
            DEBITS_TO_PAYMENTS: [_payment_facts(p) for p in _open_payments()],
            CREDITS_TO_PAYOUTS: [_payout_facts(p) for p in _open_payouts()],
        },
        rules=rules,
    )
    confirmed = suggested = 0
    for proposal in outcome.proposals:
        match = _match_record(proposal, entries, job, now)
        if progress is not None:
            progress(proposal.entry_ids, matched=match is not None)
        if match is None:
            continue  # a concurrent run matched one of its items first
        if match.status == Match.Status.CONFIRMED:
            confirmed += 1
        else:
            suggested += 1
    for ambiguity in outcome.ambiguities:
        _ambiguity_record(ambiguity, entries[ambiguity.entry_id], job, now)
        if progress is not None:
            progress([ambiguity.entry_id], matched=False)
    for entry_id in outcome.unmatched:
        entry = entries[entry_id]
        break_open(
            kind=Break.Kind.UNMATCHED_STATEMENT_ENTRY,
            key=f"entry:{entry.pk}",
            now=now,
            job=job,
            currency=entry.currency,
            amount_minor=entry_signed_minor(entry),
            reference=" ".join([*entry.end_to_end_ids, *entry.references])[:255],
            detail={"entry": entry.pk, "statement": str(entry.statement), "line": entry.line},
        )
        if progress is not None:
            progress([entry_id], matched=False)
    return MatchRun(
        confirmed=confirmed,
        suggested=suggested,
        ambiguous=len(outcome.ambiguities),
        unmatched=len(outcome.unmatched),
        not_on_statement=_payments_not_on_statement(now, job),
    )


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
    return list(Payment.objects.filter(status__in=_OPEN_PAYMENTS).exclude(Exists(live)))


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


def _match_record(
    proposal: Proposal, entries: dict[int, StatementEntry], job: ReconJob | None, now: datetime
) -> Match | None:
    rule = proposal.rule
    side = "payment" if rule.source == DEBITS_TO_PAYMENTS else "payout"
    items = (Payment if side == "payment" else Payout).objects.in_bulk(proposal.candidate_ids)
    total = sum(entries[i].amount_minor for i in proposal.entry_ids)
    expected = sum(items[i].amount_minor for i in proposal.candidate_ids)
    status = Match.Status.CONFIRMED if proposal.confirmed else Match.Status.SUGGESTED
    try:
        with transaction.atomic():
            match = Match.objects.create(
                rule_id=rule.id,
                job=job,
                source=rule.source,
                status=status,
                currency=entries[proposal.entry_ids[0]].currency,
                amount_minor=total,
                expected_minor=expected,
                adjustment_minor=total - expected,
                found_at=now,
                confirmed_at=now if proposal.confirmed else None,
            )
            MatchItem.objects.bulk_create(
                [
                    MatchItem(
                        match=match, statement_entry_id=i, amount_minor=entries[i].amount_minor
                    )
                    for i in proposal.entry_ids
                ]
                + [
                    MatchItem(match=match, amount_minor=items[i].amount_minor, **{f"{side}_id": i})
                    for i in proposal.candidate_ids
                ]
            )
            if proposal.confirmed:
                match_clear(match, now)
            else:
                StatementEntry.objects.filter(pk__in=proposal.entry_ids).update(
                    match_status=StatementEntry.MatchStatus.SUGGESTED
                )
    except (IntegrityError, WrongState):
        # Another run matched one of its items first, or a payment was rejected meanwhile:
        # nothing of this match stays, and the next run sees the items as they are then.
        return None
    return match


def match_clear(match: Match, now: datetime) -> None:
    """Post a confirmed match's clearing once (key ``match:<pk>``) and book what it clears.

    Runs inside the confirming transaction, after the status change that makes it happen once.
    """
    items = list(match.items.select_related("statement_entry", "payment", "payout"))
    entries = [i.statement_entry for i in items if i.statement_entry is not None]
    merchant = _merchant_of(items)
    chart = Chart(merchant, match.currency)
    received = match.amount_minor
    expected = match.expected_minor
    if match.source == DEBITS_TO_PAYMENTS:
        # Money left the bank: the payments stop waiting in disbursement clearing.
        legs = [
            (chart.disbursement_clearing, expected),
            (chart.bank_cash, -received),
            (chart.reconciliation_differences, received - expected),
        ]
        kind = "payments out"
    else:
        legs = [
            (chart.bank_cash, received),
            (chart.collections_clearing, -expected),
            (chart.reconciliation_differences, expected - received),
        ]
        kind = "collections"
    journal_post(
        key=f"match:{match.pk}",
        memo=f"Bank statement clears {kind}, rule '{match.rule.name}'"[:200],
        legs=[Leg(account=account(), amount_minor=amount) for account, amount in legs if amount],
        now=now,
    )
    first = entries[0]
    payment_ids = [i.payment_id for i in items if i.payment_id is not None]
    booked = Payment.objects.filter(pk__in=payment_ids, status__in=_OPEN_PAYMENTS).update(
        status=Payment.Status.BOOKED, booked_at=now, statement_entry=first
    )
    if booked != len(payment_ids):
        # Rejected by a pain.002 (or booked) since the run read it: the bank's statement and
        # its status report disagree, which an officer must look at, not the engine.
        raise WrongState(
            f"A payment of match {match.pk} is no longer open: it was rejected or booked."
        )
    StatementEntry.objects.filter(pk__in=[e.pk for e in entries]).update(
        match_status=StatementEntry.MatchStatus.MATCHED
    )
    breaks_close_by_match(
        match=match, entry_ids=[e.pk for e in entries], payment_ids=payment_ids, now=now
    )


def _merchant_of(items: list[MatchItem]) -> Merchant:
    for item in items:
        if item.payment is not None:
            return item.payment.merchant
        if item.payout is not None:
            return item.payout.merchant
    raise WrongState("A match clears at least one payment or payout.")


def _ambiguity_record(
    ambiguity: Ambiguity, entry: StatementEntry, job: ReconJob | None, now: datetime
) -> None:
    kind = "payment" if ambiguity.rule.source == DEBITS_TO_PAYMENTS else "payout"
    break_open(
        kind=Break.Kind.AMBIGUOUS_MATCH,
        key=f"entry:{entry.pk}",
        now=now,
        job=job,
        currency=entry.currency,
        amount_minor=entry_signed_minor(entry),
        reference=" ".join([*entry.end_to_end_ids, *entry.references])[:255],
        detail={
            "entry": entry.pk,
            "rule": ambiguity.rule.id,
            "rule_name": ambiguity.rule.name,
            "candidate_kind": kind,
            "options": [list(option) for option in ambiguity.options],
        },
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
        count += created
    return count
