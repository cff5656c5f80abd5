"""Facilities: opened and changed under four-eyes (proposed by an officer, applied when a
different senior officer confirms), audited term by term, held within the database's rules (one
active line per merchant and currency, commitments within the limit)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from financing.exceptions import FacilityInvalid, NotPermitted
from financing.models import Facility, FacilityChange
from financing.services.facilities import (
    FACILITY_TERMS,
    facility_change_propose,
    facility_open_propose,
)
from financing.services.requests import advance_request
from tests.financing.conftest import (
    DEFAULT_TERMS,
    Trade,
    constraint_of,
    facility_terms_set,
    four_eyes,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def terms_of(facility: Facility) -> dict[str, Any]:
    stored = Facility.objects.get(pk=facility.pk)
    return {name: getattr(stored, name) for name in (*FACILITY_TERMS, "version", "committed_minor")}


def test_opening_a_facility_is_the_first_entry_of_its_audit_trail(
    facility: Facility, senior: User, now: datetime
) -> None:
    [change] = facility.changes.all()

    assert (change.changed_at, change.reason) == (now, "Onboarding")
    assert change.proposal is not None
    assert change.officer == change.proposal.proposed_by != senior
    assert change.proposal.decided_by == senior
    assert change.before == {}
    assert change.after == {name: getattr(facility, name) for name in FACILITY_TERMS}
    assert change.after["annual_rate_bp"] == DEFAULT_TERMS["annual_rate_bp"] == 1800
    assert change.after["day_count"] == "ACT/360"  # defaults are recorded too
    assert facility.version == 1


def test_a_change_records_before_after_and_why(
    facility: Facility, officer: User, now: datetime
) -> None:
    later = now + timedelta(days=3)

    proposal = facility_change_propose(
        facility=facility,
        officer=officer,
        reason="Annual review",
        now=later,
        changes={"annual_rate_bp": 2400, "max_tenor_days": 90},
    )
    assert terms_of(facility)["annual_rate_bp"] == 1800  # nothing applies before confirmation
    four_eyes(proposal, later)
    changed = Facility.objects.get(pk=facility.pk)

    assert changed.version == 2
    assert terms_of(facility)["annual_rate_bp"] == 2400
    change = facility.changes.first()
    assert change is not None and facility.changes.count() == 2
    assert (change.officer, change.changed_at, change.reason) == (officer, later, "Annual review")
    differing = {k for k in change.after if change.before[k] != change.after[k]}
    assert differing == {"annual_rate_bp", "max_tenor_days"}
    assert (change.before["annual_rate_bp"], change.after["annual_rate_bp"]) == (1800, 2400)
    assert (change.before["max_tenor_days"], change.after["max_tenor_days"]) == (120, 90)


@pytest.mark.parametrize("reason", ["", "   \n"])
def test_a_change_without_a_reason_is_refused(
    facility: Facility, officer: User, now: datetime, reason: str
) -> None:
    before = terms_of(facility)

    with pytest.raises(FacilityInvalid, match="Say why"):
        facility_change_propose(
            facility=facility, officer=officer, reason=reason, now=now, changes={"limit_minor": 1}
        )

    assert terms_of(facility) == before
    assert facility.changes.count() == 1


def test_opening_without_a_reason_is_refused(trade: Trade, senior: User, now: datetime) -> None:
    with pytest.raises(FacilityInvalid):
        facility_open_propose(
            merchant=trade.merchant,
            currency="EUR",
            officer=senior,
            reason=" ",
            now=now,
            terms=DEFAULT_TERMS,
        )

    assert not Facility.objects.filter(merchant=trade.merchant).exists()


def test_the_limit_cannot_fall_below_what_is_committed(
    trade: Trade, facility: Facility, officer: User, now: datetime
) -> None:
    refs = trade.fundable(1, amount="1000.00")
    advance_request(merchant=trade.merchant, refs=refs, request_key="k", now=now)
    before = terms_of(facility)
    assert before["committed_minor"] == 80_000

    with pytest.raises(FacilityInvalid, match="facility_commitments_within_limit"):
        facility_change_propose(
            facility=facility,
            officer=officer,
            reason="Cut exposure",
            now=now,
            changes={"limit_minor": 79_999},
        )

    assert terms_of(facility) == before
    assert facility.changes.count() == 1
    # Exactly the committed amount is a full line, not a broken one.
    facility_terms_set(facility, now, reason="Cut exposure", limit_minor=80_000)
    assert terms_of(facility)["limit_minor"] == 80_000


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": "red"}, "Unknown facility terms: colour"),
        ({"committed_minor": 0}, "Unknown facility terms: committed_minor"),  # not a term
        ({"version": 7, "merchant_id": 1}, "Unknown facility terms: merchant_id, version"),
        ({"day_count": "30/360"}, "Day count must be one of"),
    ],
)
def test_unknown_terms_are_refused(
    facility: Facility, officer: User, now: datetime, changes: dict[str, Any], message: str
) -> None:
    before = terms_of(facility)

    with pytest.raises(FacilityInvalid, match=message):
        facility_change_propose(
            facility=facility, officer=officer, reason="x", now=now, changes=changes
        )

    assert terms_of(facility) == before
    assert facility.changes.count() == 1


def test_opening_with_unknown_terms_is_refused(trade: Trade, senior: User, now: datetime) -> None:
    with pytest.raises(FacilityInvalid, match="Unknown facility terms: colour"):
        facility_open_propose(
            merchant=trade.merchant,
            currency="EUR",
            officer=senior,
            reason="Onboarding",
            now=now,
            terms=DEFAULT_TERMS | {"colour": "red"},
        )

    assert not Facility.objects.filter(merchant=trade.merchant).exists()
    assert not FacilityChange.objects.exists()


@pytest.mark.parametrize(
    ("changes", "constraint"),
    [
        ({"advance_rate_bp": 0}, "facility_advance_rate_range"),
        ({"advance_rate_bp": 10_001}, "facility_advance_rate_range"),
        ({"annual_rate_bp": 100_001}, "facility_rates_range"),
        ({"debtor_cap_bp": 0}, "facility_debtor_cap_range"),
        ({"max_tenor_days": 0}, "facility_days_positive"),
    ],
)
def test_terms_out_of_range_are_refused_by_the_database(
    facility: Facility, officer: User, now: datetime, changes: dict[str, Any], constraint: str
) -> None:
    before = terms_of(facility)

    with pytest.raises(FacilityInvalid, match=constraint):
        facility_change_propose(
            facility=facility, officer=officer, reason="x", now=now, changes=changes
        )

    assert terms_of(facility) == before


def test_an_auditor_can_neither_open_nor_change_a_facility(
    facility: Facility, trade: Trade, auditor: User, now: datetime
) -> None:
    before = terms_of(facility)

    with pytest.raises(NotPermitted):
        facility_change_propose(
            facility=facility,
            officer=auditor,
            reason="Looks low",
            now=now,
            changes={"limit_minor": 1},
        )
    with pytest.raises(NotPermitted):
        facility_open_propose(
            merchant=trade.merchant,
            currency="USD",
            officer=auditor,
            reason="Onboarding",
            now=now,
            terms=DEFAULT_TERMS,
        )

    assert terms_of(facility) == before
    assert list(Facility.objects.values_list("pk", flat=True)) == [facility.pk]
    assert FacilityChange.objects.count() == 1


def test_one_active_facility_per_merchant_and_currency(
    facility: Facility,
    trade: Trade,
    open_facility: Callable[..., Facility],
    senior: User,
    now: datetime,
) -> None:
    with pytest.raises(FacilityInvalid, match="facility_one_active_per_currency"):
        open_facility(trade.merchant, "EUR")
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        Facility.objects.create(
            merchant=trade.merchant, currency="EUR", advance_rate_bp=8000, annual_rate_bp=1800,
            limit_minor=1,
        )  # fmt: skip
    assert constraint_of(refused.value) == "facility_one_active_per_currency"
    assert Facility.objects.filter(merchant=trade.merchant).count() == 1

    # Another currency is another line; a closed line makes room for a new one.
    open_facility(trade.merchant, "USD")
    facility_terms_set(facility, now, reason="Replaced", active=False)
    replacement = open_facility(trade.merchant, "EUR", limit_minor=20_000_000)
    assert Facility.objects.filter(merchant=trade.merchant, active=True).count() == 2
    assert replacement.pk != facility.pk
