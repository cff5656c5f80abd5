"""Price certainty (issue 8, items 9 and 10): an advance pays out only at a price its merchant
accepted, fee days run from the day the money leaves, and a request can be withdrawn.

One 4,000.00 advance against a 5,000.00 invoice due in 45 days, requested at noon on
2026-11-01 (UTC, the default business time zone); the checker threshold is 1,000.00.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

from financing.books.models import JournalEntry
from financing.business_day import business_day, business_day_end
from financing.exceptions import AdvanceRefused, QuoteChanged, WrongState
from financing.models import Advance, Assignment, Facility
from financing.services.decisions import advance_approve, advance_authorize
from financing.services.quotes import advance_accept, advance_requote_send, advance_withdraw
from financing.services.requests import advance_quote, advance_request
from tests.financing.conftest import TODAY, Trade, constraint_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

NEXT_DAY = datetime(2026, 11, 2, 9, tzinfo=UTC)


@pytest.fixture
def facility(trade: Trade, open_facility: Callable[..., Facility]) -> Facility:
    return open_facility(trade.merchant, checker_threshold_minor=100_000)


@pytest.fixture
def advance(trade: Trade, facility: Facility, now: datetime) -> Advance:
    refs = trade.fundable(1, amount="5000.00", due_in_days=45)
    return advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)


def fresh(advance: Advance) -> Advance:
    return Advance.objects.get(pk=advance.pk)


# The accepted quote -----------------------------------------------------------------------------


def test_a_request_accepts_todays_quote_which_expires_when_the_business_day_ends(
    advance: Advance,
) -> None:
    assert advance.accepted_hash == advance.price_hash != ""
    assert advance.priced_on == TODAY
    assert advance.quote_expires_at == datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert advance.days == 45  # from the quote's day, the expected disbursement day


@override_settings(CHAINFIN_BUSINESS_TZ="Europe/Berlin")
def test_the_business_day_is_the_banks_not_utcs() -> None:
    late_evening_utc = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)  # 00:30 in Berlin

    day = business_day(late_evening_utc)

    assert day == TODAY + timedelta(days=1)
    assert business_day_end(day) == datetime(2026, 11, 2, 22, 59, 59, 999999, tzinfo=UTC)


def test_the_quote_names_its_price_and_a_request_for_another_price_is_refused(
    trade: Trade, facility: Facility, now: datetime
) -> None:
    refs = trade.fundable(1, amount="5000.00")
    quote = advance_quote(merchant=trade.merchant, refs=refs, today=TODAY)
    stale = advance_quote(merchant=trade.merchant, refs=refs, today=TODAY - timedelta(days=1))
    assert quote.terms_hash != stale.terms_hash  # one more fee day is another price

    with pytest.raises(QuoteChanged) as changed:
        advance_request(
            merchant=trade.merchant,
            refs=refs,
            request_key="k",
            now=now,
            terms_hash=stale.terms_hash,
        )
    assert changed.value.terms_hash == quote.terms_hash
    assert not Advance.objects.exists()

    advance = advance_request(
        merchant=trade.merchant, refs=refs, request_key="k", now=now, terms_hash=quote.terms_hash
    )
    assert advance.accepted_hash == quote.terms_hash


def test_approval_within_the_quote_keeps_its_price(
    advance: Advance, officer: User, now: datetime
) -> None:
    approved = advance_approve(advance=advance, officer=officer, now=now + timedelta(hours=11))

    assert approved.status == Advance.Status.APPROVED
    assert (approved.fee_minor, approved.price_hash) == (advance.fee_minor, advance.price_hash)


def test_approval_after_the_day_rolled_over_sends_the_new_price_to_the_merchant(
    advance: Advance, officer: User
) -> None:
    with pytest.raises(QuoteChanged):
        advance_approve(advance=advance, officer=officer, now=NEXT_DAY)

    requote = fresh(advance)
    assert requote.status == Advance.Status.REQUOTE
    assert requote.approved_by is None
    assert requote.accepted_hash == advance.price_hash != requote.price_hash
    assert (requote.days, requote.priced_on) == (44, NEXT_DAY.date())
    assert requote.fee_minor < advance.fee_minor
    assert requote.quote_expires_at == business_day_end(NEXT_DAY.date())
    assert list(requote.assignments.values_list("status", flat=True)) == ["held"]
    with pytest.raises(WrongState):  # nothing to approve until the merchant accepts
        advance_approve(advance=requote, officer=officer, now=NEXT_DAY)


def test_the_merchant_accepts_the_new_price_and_it_disburses_at_that_price(
    trade: Trade, facility: Facility, officer: User, senior: User, now: datetime
) -> None:
    facility.checker_threshold_minor = 1_000_000
    facility.save(update_fields=["checker_threshold_minor"])
    refs = trade.fundable(1, amount="5000.00")
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)
    with pytest.raises(QuoteChanged):
        advance_approve(advance=advance, officer=officer, now=NEXT_DAY)
    requote = fresh(advance)

    with pytest.raises(QuoteChanged):
        advance_accept(advance=requote, terms_hash=advance.price_hash, now=NEXT_DAY)
    accepted = advance_accept(advance=requote, terms_hash=requote.price_hash, now=NEXT_DAY)
    again = advance_accept(advance=requote, terms_hash=requote.price_hash, now=NEXT_DAY)

    assert accepted.status == again.status == Advance.Status.REQUESTED
    disbursed = advance_approve(advance=accepted, officer=officer, now=NEXT_DAY)
    assert disbursed.status == Advance.Status.DISBURSED
    assert (disbursed.fee_minor, disbursed.days) == (requote.fee_minor, 44)


def test_an_expired_pending_quote_cannot_be_accepted_and_a_fresh_one_waits(
    advance: Advance, officer: User
) -> None:
    with pytest.raises(QuoteChanged):
        advance_approve(advance=advance, officer=officer, now=NEXT_DAY)
    pending = fresh(advance)
    two_days_on = NEXT_DAY + timedelta(days=1)

    with pytest.raises(QuoteChanged) as changed:
        advance_accept(advance=pending, terms_hash=pending.price_hash, now=two_days_on)

    fresher = fresh(advance)
    assert fresher.status == Advance.Status.REQUOTE
    assert (fresher.days, changed.value.terms_hash) == (43, fresher.price_hash)
    assert fresher.price_hash != pending.price_hash


# Item 10: fee days run from disbursement --------------------------------------------------------


def test_authorization_a_day_after_approval_prices_the_fee_from_the_day_money_leaves(
    advance: Advance, officer: User, senior: User, now: datetime
) -> None:
    approved = advance_approve(advance=advance, officer=officer, now=now)
    assert (approved.status, approved.days) == (Advance.Status.APPROVED, 45)

    with pytest.raises(QuoteChanged):
        advance_authorize(advance=approved, officer=senior, now=NEXT_DAY)
    assert not JournalEntry.objects.filter(key=f"disburse:{advance.ref}").exists()

    requote = fresh(advance)
    advance_accept(advance=requote, terms_hash=requote.price_hash, now=NEXT_DAY)
    advance_approve(advance=requote, officer=officer, now=NEXT_DAY)
    disbursed = advance_authorize(advance=requote, officer=senior, now=NEXT_DAY)

    assert disbursed.status == Advance.Status.DISBURSED
    assert disbursed.disbursed_at == NEXT_DAY
    assert disbursed.days == (disbursed.due_date - NEXT_DAY.date()).days == 44
    # 4,000.00 x 18 % x 44 / 360 = 88.00, not the 90.00 of the 45 days counted from approval
    assert disbursed.fee_minor == 8_800


# The database's word ----------------------------------------------------------------------------


def test_the_database_refuses_paying_out_a_price_the_merchant_did_not_accept(
    advance: Advance,
) -> None:
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        Advance.objects.filter(pk=advance.pk).update(
            status=Advance.Status.APPROVED, price_hash="f" * 64
        )
    assert constraint_of(refused.value) == "advance_at_accepted_price"

    with pytest.raises(IntegrityError) as late, transaction.atomic():
        Advance.objects.filter(pk=advance.pk).update(
            status=Advance.Status.DISBURSED,
            disbursed_at=advance.quote_expires_at + timedelta(microseconds=1),
        )
    assert constraint_of(late.value) == "advance_disbursed_before_quote_expiry"


# The hook for facility changes -------------------------------------------------------------------


def test_the_requote_hook_sends_an_approved_advance_back_to_the_merchant(
    advance: Advance, facility: Facility, officer: User, now: datetime
) -> None:
    approved = advance_approve(advance=advance, officer=officer, now=now)
    Facility.objects.filter(pk=facility.pk).update(annual_rate_bp=2400)

    assert advance_requote_send(advance=approved, now=now, reason="Rate review") is True

    requote = fresh(advance)
    assert (requote.status, requote.approved_by) == (Advance.Status.REQUOTE, None)
    assert "Rate review" in requote.decision_note
    assert requote.fee_minor == 12_000  # 4,000.00 x 24 % x 45 / 360
    assert advance_requote_send(advance=requote, now=now, reason="again") is False


def test_the_requote_hook_leaves_an_unchanged_price_alone(advance: Advance, now: datetime) -> None:
    assert advance_requote_send(advance=advance, now=now, reason="no change") is False
    assert fresh(advance).status == Advance.Status.REQUESTED


# Withdrawal ------------------------------------------------------------------------------------


def test_a_withdrawn_request_frees_its_receivables_and_room_at_once(
    advance: Advance, facility: Facility, trade: Trade, now: datetime
) -> None:
    committed = Facility.objects.get(pk=facility.pk).committed_minor
    assert committed == advance.advance_minor

    withdrawn = advance_withdraw(advance=advance, now=now)
    again = advance_withdraw(advance=advance, now=now)

    assert withdrawn.status == again.status == Advance.Status.WITHDRAWN
    assert Facility.objects.get(pk=facility.pk).committed_minor == 0
    assert list(Assignment.objects.values_list("status", flat=True)) == ["released"]
    refs = list(advance.assignments.values_list("invoice_ref", flat=True))
    reused = advance_request(merchant=trade.merchant, refs=refs, request_key="k2", now=now)
    assert reused.status == Advance.Status.REQUESTED


def test_a_requote_can_be_withdrawn_but_an_approved_advance_cannot(
    advance: Advance, officer: User, now: datetime
) -> None:
    approved = advance_approve(advance=advance, officer=officer, now=now)

    with pytest.raises(WrongState, match="not yet approved"):
        advance_withdraw(advance=approved, now=now)
    assert fresh(advance).status == Advance.Status.APPROVED

    advance_requote_send(advance=approved, now=NEXT_DAY, reason="the day rolled over")
    assert advance_withdraw(advance=approved, now=NEXT_DAY).status == Advance.Status.WITHDRAWN


@pytest.mark.django_db(transaction=True)
def test_withdrawal_racing_approval_ends_in_exactly_one_of_them(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    refs = trade.fundable(1, amount="5000.00")
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run(action: Callable[[], Advance]) -> None:
        try:
            barrier.wait()
            outcomes.append(action().status)
        except (WrongState, AdvanceRefused) as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(lambda: advance_withdraw(advance=advance, now=now),)),
        threading.Thread(
            target=run,
            args=(lambda: advance_approve(advance=advance, officer=officer, now=now),),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    final = fresh(advance)
    assert sorted(outcomes) in (
        sorted([Advance.Status.WITHDRAWN, "WrongState"]),
        sorted([Advance.Status.APPROVED, "WrongState"]),
    )
    committed = Facility.objects.get(pk=facility.pk).committed_minor
    assert committed == (0 if final.status == Advance.Status.WITHDRAWN else final.advance_minor)
