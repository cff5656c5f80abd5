"""The breaks workflow's services: recorded once, resolved with a reason, adjusted four-eyes."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.books.models import JournalEntry
from financing.books.verification import books_verify
from financing.exceptions import MakerCheckerViolation, NotPermitted, WrongState
from financing.models import Break, RiskChange
from financing.reconciliation.breaks import (
    age_bucket,
    break_adjust_propose,
    break_new,
    break_open,
    break_resolve,
)
from financing.services.proposals import change_confirm
from merchants.models import Merchant
from tests.financing.settlement_helpers import balance

pytestmark = pytest.mark.django_db


def fee_break(now: datetime, merchant: Merchant | None = None) -> Break:
    brk, created = break_open(
        break_new(
            kind=Break.Kind.UNMATCHED_STATEMENT_ENTRY,
            key="entry:1",
            now=now,
            merchant=merchant,
            currency="EUR",
            amount_minor=-1250,
            reference="Account fee November",
        )
    )
    assert created
    return brk


def test_a_break_found_again_is_the_same_break(now: datetime) -> None:
    first = fee_break(now)
    again, created = break_open(
        break_new(kind=Break.Kind.UNMATCHED_STATEMENT_ENTRY, key="entry:1", now=now)
    )
    assert (again.pk, created, Break.objects.count()) == (first.pk, False, 1)


def test_resolve_needs_a_reason_and_happens_once(now: datetime, officer: User) -> None:
    brk = fee_break(now)
    with pytest.raises(WrongState):
        break_resolve(brk=brk, officer=officer, reason="  ", now=now)
    done = break_resolve(brk=brk, officer=officer, reason="Bank fee, booked by hand", now=now)
    assert (done.status, done.resolved_by, done.resolution) == (
        "resolved",
        officer,
        "Bank fee, booked by hand",
    )
    with pytest.raises(WrongState):
        break_resolve(brk=brk, officer=officer, reason="again", now=now)


def test_an_auditor_cannot_resolve(now: datetime, auditor: User) -> None:
    brk = fee_break(now)
    with pytest.raises(NotPermitted):
        break_resolve(brk=brk, officer=auditor, reason="looks fine", now=now)
    with pytest.raises(NotPermitted):
        break_adjust_propose(
            brk=brk,
            officer=auditor,
            debit="reconciliation_differences",
            credit="bank_cash",
            amount_minor=1250,
            reason="fee",
            now=now,
        )
    assert Break.objects.get(pk=brk.pk).status == "open"


def test_the_database_refuses_a_resolution_without_reason(now: datetime, officer: User) -> None:
    brk = fee_break(now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Break.objects.filter(pk=brk.pk).update(
            status="resolved", resolved_at=now, resolved_by=officer, resolution=""
        )
    # negative control: with a reason the same update passes
    Break.objects.filter(pk=brk.pk).update(
        status="resolved", resolved_at=now, resolved_by=officer, resolution="fee"
    )


def test_adjustment_posts_once_when_a_second_officer_confirms(
    now: datetime, officer: User, senior: User
) -> None:
    brk = fee_break(now)
    change = break_adjust_propose(
        brk=brk,
        officer=officer,
        debit="reconciliation_differences",
        credit="bank_cash",
        amount_minor=1250,
        reason="The bank's account fee for November",
        now=now,
    )
    assert change.kind == RiskChange.Kind.BREAK_ADJUST
    assert Break.objects.get(pk=brk.pk).status == "open"  # nothing moves on a proposal
    assert not JournalEntry.objects.filter(key=f"break:{brk.pk}").exists()
    with pytest.raises(NotPermitted):  # an officer proposes; a senior officer confirms
        change_confirm(change=change, officer=officer, now=now)
    change_confirm(change=change, officer=senior, now=now)
    brk.refresh_from_db()
    assert brk.status == "resolved" and brk.resolved_by == senior
    assert "account fee" in brk.resolution and officer.username in brk.resolution
    assert JournalEntry.objects.filter(key=f"break:{brk.pk}").count() == 1
    assert balance("bank_cash") == -1250
    assert balance("reconciliation_differences") == 1250
    assert books_verify().intact


def test_the_proposer_never_confirms_its_own_adjustment(now: datetime, senior: User) -> None:
    brk = fee_break(now)
    change = break_adjust_propose(
        brk=brk,
        officer=senior,
        debit="reconciliation_differences",
        credit="bank_cash",
        amount_minor=1250,
        reason="fee",
        now=now,
    )
    with pytest.raises(MakerCheckerViolation):
        change_confirm(change=change, officer=senior, now=now)
    assert Break.objects.get(pk=brk.pk).status == "open"


def test_adjustment_names_only_adjustable_accounts(now: datetime, officer: User) -> None:
    brk = fee_break(now)
    for debit, credit in [
        ("advances_receivable", "bank_cash"),
        ("bank_cash", "bank_cash"),
        ("suspense", "bank_cash"),
    ]:  # suspense is a merchant's; none here
        with pytest.raises(WrongState):
            break_adjust_propose(
                brk=brk,
                officer=officer,
                debit=debit,
                credit=credit,
                amount_minor=1,
                reason="x",
                now=now,
            )
    with pytest.raises(WrongState):
        break_adjust_propose(
            brk=brk,
            officer=officer,
            debit="bank_cash",
            credit="reconciliation_differences",
            amount_minor=0,
            reason="x",
            now=now,
        )


def test_age_buckets() -> None:
    today = date(2026, 11, 30)
    got = [age_bucket(date(2026, 11, d), today) for d in (30, 29, 28, 23, 22, 1)]
    assert got == ["0-1d", "0-1d", "2-7d", "2-7d", "8-30d", "8-30d"]
    assert age_bucket(date(2026, 10, 30), today) == ">30d"
