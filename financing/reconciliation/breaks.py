"""The breaks workflow: a difference between records of money, found once, resolved with a reason.

A break is recorded once per (kind, key) whatever number of runs find it again. An officer
resolves it with a reason (``break_resolve``); where money must move to resolve it (a bank
charge nobody booked, a payment the bank returned), the officer proposes a journal adjustment
(``break_adjust_propose``) that a different senior officer confirms
(``financing.services.proposals``), which posts it once (key ``break:<pk>``) and resolves the
break in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q

from financing.accounts import Chart
from financing.books.models import Account
from financing.books.services import Leg, journal_post
from financing.exceptions import WrongState
from financing.models import Break, Match, ReconJob, RiskChange
from financing.services._shared import officer_require, proposal_confirmed_require, proposal_record
from ledger.money import format_minor_units
from merchants.models import Merchant

RESOLVE_PERMISSION = "financing.change_break"

# The accounts an adjustment may move money between: the bank's own clearing and cash, the
# differences account, and the merchant's suspense. Never a merchant's advances or reserve:
# those move only through settlement, where the waterfall keeps them right.
ADJUSTABLE = {
    "bank_cash": "Bank cash",
    "disbursement_clearing": "Disbursement clearing",
    "collections_clearing": "Collections clearing",
    "reconciliation_differences": "Reconciliation differences",
    "suspense": "The merchant's suspense",
}
_MERCHANTS = {"suspense"}

# Age buckets for the queue and the officer's home, in days since found: the ranges a
# reconciliation team reports (within a day, a week, a month, older).
AGE_BUCKETS: list[tuple[str, int, int | None]] = [
    ("0-1d", 0, 1),
    ("2-7d", 2, 7),
    ("8-30d", 8, 30),
    (">30d", 31, None),
]


def break_new(
    *,
    kind: str,
    key: str,
    now: datetime,
    job: ReconJob | None = None,
    merchant: Merchant | None = None,
    currency: str = "",
    amount_minor: int | None = None,
    expected_minor: int | None = None,
    reference: str = "",
    detail: Mapping[str, Any] | None = None,
) -> Break:
    """The break ``break_open`` records, unsaved: for ``breaks_open`` to record many at once."""
    return Break(
        kind=kind,
        key=key,
        job=job,
        merchant=merchant,
        currency=currency,
        amount_minor=amount_minor,
        expected_minor=expected_minor,
        reference=reference[:255],
        detail=dict(detail or {}),
        found_at=now,
    )


def break_open(new: Break) -> tuple[Break, bool]:
    """Record ``new`` (made by ``break_new``) once per (kind, key); a break found again is
    returned as it is, and whether it was recorded now.

    A resolved break stays resolved: the same difference found again was decided already.
    """
    found = ("job", "merchant", "currency", "amount_minor", "expected_minor", "reference", "detail")
    defaults = {name: getattr(new, name) for name in (*found, "found_at")}
    return Break.objects.get_or_create(kind=new.kind, key=new.key, defaults=defaults)


def breaks_open(*, breaks: Sequence[Break]) -> None:
    """Record each of ``breaks`` (made by ``break_new``) once per (kind, key), in one statement.

    As ``break_open`` for each: a break found before is left as it is, whatever its status.
    """
    # In one order (kind, key), so that two runs recording the same breaks at once wait for
    # each other on the unique index, never deadlock.
    Break.objects.bulk_create(sorted(breaks, key=lambda b: (b.kind, b.key)), ignore_conflicts=True)


@dataclass(frozen=True)
class MatchCleared:
    """A confirmed match and what it cleared: its statement entries and its payments."""

    match: Match
    entry_ids: list[int]
    payment_ids: list[int]


def breaks_close_by_match(
    *, match: Match, entry_ids: list[int], payment_ids: list[int], now: datetime
) -> int:
    """Close the open breaks a confirmed match clears, the match their resolution: its
    statement entries found unmatched or ambiguous before (their payment or payout appeared
    since), and its payments found missing from the statements. Returns how many closed.

    Runs in the match's transaction, so a break closes exactly when its clearing posts.
    """
    return Break.objects.filter(
        _cleared_by(entry_ids, payment_ids), status=Break.Status.OPEN
    ).update(
        status=Break.Status.RESOLVED,
        resolved_at=now,
        resolved_match=match,
        resolution=f"Cleared by match {match.pk} (rule '{match.rule.name}'), "
        f"{format_minor_units(match.amount_minor, match.currency)} {match.currency}.",
    )


def breaks_close_by_matches(*, cleared: Sequence[MatchCleared], now: datetime) -> int:
    """Close the open breaks a batch of confirmed matches clears, as ``breaks_close_by_match``
    does for each. Returns how many closed.

    One query finds the few matches that clear any break (most clear none); only those write.
    Runs in the batch's transaction, so a break closes exactly when its clearing posts.
    """
    found = Break.objects.filter(
        _cleared_by(
            [pk for c in cleared for pk in c.entry_ids],
            [pk for c in cleared for pk in c.payment_ids],
        ),
        status=Break.Status.OPEN,
    )
    keys = set(found.values_list("key", flat=True))
    if not keys:
        return 0
    closed = 0
    for c in cleared:
        mine = {f"entry:{pk}" for pk in c.entry_ids} | {f"payment:{pk}" for pk in c.payment_ids}
        if mine & keys:
            closed += breaks_close_by_match(
                match=c.match, entry_ids=c.entry_ids, payment_ids=c.payment_ids, now=now
            )
    return closed


def _cleared_by(entry_ids: list[int], payment_ids: list[int]) -> Q:
    return Q(
        kind__in=[Break.Kind.UNMATCHED_STATEMENT_ENTRY, Break.Kind.AMBIGUOUS_MATCH],
        key__in=[f"entry:{pk}" for pk in entry_ids],
    ) | Q(kind=Break.Kind.PAYMENT_NOT_ON_STATEMENT, key__in=[f"payment:{pk}" for pk in payment_ids])


def break_resolve(*, brk: Break, officer: User, reason: str, now: datetime) -> Break:
    """Resolve an open break with the officer's reason.

    :raises NotPermitted: the officer may not resolve breaks (an auditor).
    :raises WrongState: no reason, or it was resolved already.
    """
    officer_require(officer, RESOLVE_PERMISSION)
    if not reason.strip():
        raise WrongState("Say why the break is resolved: the auditors read it.")
    _resolve(brk.pk, officer, reason.strip(), now)
    brk.refresh_from_db()
    return brk


def _resolve(pk: int, officer: User, reason: str, now: datetime) -> None:
    resolved = Break.objects.filter(pk=pk, status=Break.Status.OPEN).update(
        status=Break.Status.RESOLVED, resolved_at=now, resolved_by=officer, resolution=reason
    )
    if not resolved:
        raise WrongState("This break was resolved already.")


def break_adjust_propose(
    *,
    brk: Break,
    officer: User,
    debit: str,
    credit: str,
    amount_minor: int,
    reason: str,
    now: datetime,
) -> RiskChange:
    """Propose the journal entry that resolves a break: ``debit`` and ``credit`` name accounts
    in ``ADJUSTABLE``, in the break's currency; a different senior officer confirms it.

    :raises NotPermitted: the officer may not resolve breaks.
    :raises WrongState: no reason, the break is resolved or has no currency, an account is
        not adjustable (or needs a merchant the break lacks), both are one account, the
        amount is not positive, or an adjustment of it is pending.
    """
    officer_require(officer, RESOLVE_PERMISSION)
    if brk.status != Break.Status.OPEN:
        raise WrongState("This break was resolved already.")
    if not brk.currency:
        raise WrongState("This break names no currency: resolve it with a reason instead.")
    for name in (debit, credit):
        if name not in ADJUSTABLE:
            raise WrongState(f"'{name}' is not an account an adjustment may move.")
        if name in _MERCHANTS and brk.merchant_id is None:
            raise WrongState(f"'{name}' is a merchant's account; this break names no merchant.")
    if debit == credit:
        raise WrongState("Debit and credit are the same account.")
    if amount_minor <= 0:
        raise WrongState("The amount of an adjustment is positive.")
    return proposal_record(
        kind=RiskChange.Kind.BREAK_ADJUST,
        target=f"break:{brk.pk}",
        officer=officer,
        reason=reason,
        now=now,
        before={
            "break": str(brk),
            "currency": brk.currency,
            "amount_minor": brk.amount_minor,
            "expected_minor": brk.expected_minor,
        },
        payload={
            "break": brk.pk,
            "debit": debit,
            "credit": credit,
            "amount_minor": amount_minor,
            "amount": format_minor_units(amount_minor, brk.currency),
        },
    )


def break_adjust_apply(*, change: RiskChange, now: datetime) -> Break:
    """Post a confirmed adjustment, once (key ``break:<pk>``), and resolve its break with the
    proposer's reason, in the confirming transaction.

    :raises WrongState: ``change`` is not a confirmed adjustment, or the break was resolved.
    """
    proposal_confirmed_require(change, RiskChange.Kind.BREAK_ADJUST)
    confirmer = change.decided_by
    if confirmer is None:  # a confirmed change names its decider (riskchange_decision_...)
        raise WrongState("Only a confirmed change applies.")
    payload = change.payload
    with transaction.atomic():
        brk = (
            Break.objects.select_for_update(of=("self",))
            .select_related("merchant")
            .get(pk=payload["break"])
        )
        amount = int(payload["amount_minor"])
        journal_post(
            key=f"break:{brk.pk}",
            memo=f"Reconciliation adjustment for {brk.get_kind_display().lower()} {brk.key}"[:200],
            legs=[
                Leg(account=_account(brk, payload["debit"]), amount_minor=amount),
                Leg(account=_account(brk, payload["credit"]), amount_minor=-amount),
            ],
            now=now,
        )
        reason = (
            f"{change.reason} (adjustment {payload['amount']} {brk.currency}: Dr "
            f"{payload['debit']} / Cr {payload['credit']}, proposed by "
            f"{change.proposed_by.get_username()}, confirmed by {confirmer.get_username()})"
        )
        _resolve(brk.pk, confirmer, reason, now)
    brk.refresh_from_db()
    return brk


def _account(brk: Break, name: str) -> Account:
    # A bank account needs no merchant; Chart takes one for the merchant's ledgers only.
    chart = Chart(brk.merchant, brk.currency)  # type: ignore[arg-type]
    opened: Account = getattr(chart, name)()
    return opened


def age_bucket(found_on: date, today: date) -> str:
    """The age bucket of a break found on ``found_on``, as of ``today``."""
    days = (today - found_on).days
    for label, low, high in AGE_BUCKETS:
        if days >= low and (high is None or days <= high):
            return label
    return AGE_BUCKETS[0][0]  # found "in the future" (clock skew): the newest bucket
