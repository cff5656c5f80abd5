"""An officer's decisions on what the matching engine proposed: confirm or reject a suggested
match, and choose the candidate of an ambiguous one. Confirming posts the clearing once
(``financing.reconciliation.engine.match_clear``), which also closes the breaks it clears.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.exceptions import WrongState
from financing.models import Break, Match, MatchItem, MatchRule, Payment, StatementEntry
from financing.reconciliation.breaks import break_open
from financing.reconciliation.clearing import match_clear
from financing.reconciliation.engine import entry_break
from financing.reconciliation.matching import DEBITS_TO_PAYMENTS
from financing.services._shared import officer_require
from ledger.models import Payout

CONFIRM_PERMISSION = "financing.change_match"


def match_confirm(*, match: Match, officer: User, now: datetime) -> Match:
    """Confirm a suggested match: post its clearing (and adjustment) once, book its payments.

    :raises NotPermitted: the officer may not confirm matches (an auditor).
    :raises WrongState: it is not suggested (confirmed or rejected already).
    """
    officer_require(officer, CONFIRM_PERMISSION)
    with transaction.atomic():
        claimed = Match.objects.filter(pk=match.pk, status=Match.Status.SUGGESTED).update(
            status=Match.Status.CONFIRMED, confirmed_at=now, confirmed_by=officer
        )
        if not claimed:
            raise WrongState("This match was decided already.")
        match.refresh_from_db()
        match_clear(match, now)
    return match


def match_reject(*, match: Match, officer: User, note: str, now: datetime) -> Match:
    """Reject a suggested match: its items are free again, and each of its entries becomes a
    break ``unmatched_statement_entry`` that the engine no longer guesses at.

    :raises NotPermitted: the officer may not decide on matches.
    :raises WrongState: no note, or it is not suggested.
    """
    officer_require(officer, CONFIRM_PERMISSION)
    if not note.strip():
        raise WrongState("Say why the match is wrong: the officer resolving the break reads it.")
    with transaction.atomic():
        claimed = Match.objects.filter(pk=match.pk, status=Match.Status.SUGGESTED).update(
            status=Match.Status.REJECTED, rejected_at=now, rejected_by=officer, note=note.strip()
        )
        if not claimed:
            raise WrongState("This match was decided already.")
        match.items.update(live=False)
        entry_ids = match.items.filter(statement_entry__isnull=False).values("statement_entry")
        StatementEntry.objects.filter(pk__in=entry_ids).update(
            match_status=StatementEntry.MatchStatus.UNMATCHED
        )
        for entry in StatementEntry.objects.filter(pk__in=entry_ids).order_by("pk"):
            break_open(
                entry_break(
                    entry,
                    kind=Break.Kind.UNMATCHED_STATEMENT_ENTRY,
                    job=match.job,
                    now=now,
                    detail={"entry": entry.pk, "rejected_match": match.pk, "note": note.strip()},
                )
            )
    match.refresh_from_db()
    return match


def ambiguity_decide(
    *, brk: Break, option: int, officer: User, reason: str, now: datetime
) -> Match:
    """Decide an ambiguous match: the officer picks one of the break's candidate sets; the
    match is confirmed by them (its clearing posted once), and the break resolved with why.

    :raises NotPermitted: the officer may not decide on matches.
    :raises WrongState: no reason, not an open ambiguous break, no such option, or an item of
        it was matched since.
    """
    officer_require(officer, CONFIRM_PERMISSION)
    if not reason.strip():
        raise WrongState("Say why this candidate is the one: the auditors read it.")
    if brk.kind != Break.Kind.AMBIGUOUS_MATCH or brk.status != Break.Status.OPEN:
        raise WrongState("Only an open ambiguous-match break is decided by choosing.")
    options = brk.detail.get("options", [])
    if not 0 <= option < len(options):
        raise WrongState(f"Choose one of the {len(options)} candidate sets.")
    rule = MatchRule.objects.get(pk=brk.detail["rule"])
    entry = StatementEntry.objects.get(pk=brk.detail["entry"])
    side = "payment" if rule.source == DEBITS_TO_PAYMENTS else "payout"
    ids = sorted(int(i) for i in options[option])
    items = (Payment if side == "payment" else Payout).objects.in_bulk(ids)
    expected = sum(items[i].amount_minor for i in ids)
    try:
        with transaction.atomic():
            match = Match.objects.create(
                rule=rule,
                job=brk.job,
                source=rule.source,
                status=Match.Status.CONFIRMED,
                currency=entry.currency,
                amount_minor=entry.amount_minor,
                expected_minor=expected,
                adjustment_minor=entry.amount_minor - expected,
                found_at=now,
                confirmed_at=now,
                confirmed_by=officer,
                note=reason.strip(),
            )
            MatchItem.objects.bulk_create(
                [MatchItem(match=match, statement_entry=entry, amount_minor=entry.amount_minor)]
                + [
                    MatchItem(match=match, amount_minor=items[i].amount_minor, **{f"{side}_id": i})
                    for i in ids
                ]
            )
            why = (
                f"{reason.strip()} (matched to {side} {', '.join(map(str, ids))}, match {match.pk})"
            )
            if not Break.objects.filter(pk=brk.pk, status=Break.Status.OPEN).update(
                status=Break.Status.RESOLVED, resolved_at=now, resolved_by=officer, resolution=why
            ):
                raise WrongState("This break was resolved already.")
            # After: the officer's decision, not the match, resolves this break.
            match_clear(match, now)
    except IntegrityError:
        raise WrongState("The entry or a candidate was matched since; look again.") from None
    return match
