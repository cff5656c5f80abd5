"""Settings, payout bank account: masked on every page; an owner's new account waits for a
senior officer of the bank; the number is in no page, no log and no plain database column."""

# The team fixture is imported to be shared; tests naming it as an argument are not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from financing.models import RiskChange
from financing.roles import OFFICER, SENIOR_OFFICER
from financing.services.proposals import change_confirm, change_reject
from merchants.models import BankAccount
from tests.financing.conftest import staff
from tests.financing.reconciliation.helpers import IBAN, account_active
from tests.portal.conftest import portal_sign_in
from tests.portal.settings_helpers import Team, team  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db
PAGE = reverse("portal:settings_bank_account")
NEW_IBAN = "GB29 NWBK 6016 1331 9268 19"
# Every way the numbers could be written; none may reach a page or a log.
SPELLINGS = (
    IBAN,
    "DE89 3704 0044 0532 0130 00",
    "0532013000",
    NEW_IBAN,
    "GB29NWBK60161331926819",
    "60161331926819",
)


def _leaks(text: str) -> list[str]:
    return [s for s in SPELLINGS if s in text]


@pytest.fixture
def officers(db: None) -> tuple[User, User]:
    return staff("officer-x", OFFICER), staff("senior-x", SENIOR_OFFICER)


def test_every_member_sees_the_account_masked(
    team: Team, officers: tuple[User, User], now: datetime
) -> None:
    account_active(team.a, *officers, now)
    for user in (team.owner, team.finance, team.viewer):
        html = portal_sign_in(user).get(PAGE).content.decode()
        assert "DE89 •••• •••• •••• 3000" in html and _leaks(html) == []
        assert ("Change the bank account" in html) == (user == team.owner)
    assert "DE89 ••••" not in portal_sign_in(team.owner_b).get(PAGE).content.decode()


def test_an_owners_new_account_pays_only_once_the_bank_confirms_it(
    team: Team, officers: tuple[User, User], now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account_active(team.a, *officers, now)
    client = portal_sign_in(team.owner)
    response = client.post(PAGE, {"holder_name": "Supplier GmbH", "iban": NEW_IBAN}, follow=True)
    html = response.content.decode()
    assert response.status_code == 200 and "GB29 •••• •••• •••• 6819" in html
    assert "The bank checks it with you" in html and "Change the bank account" not in html
    change = RiskChange.objects.get(kind=RiskChange.Kind.BANK_ACCOUNT_CHANGE, status="proposed")
    assert change.proposed_by == team.owner
    active = BankAccount.objects.get(merchant=team.a, status="active")
    assert active.masked == "DE89 •••• •••• •••• 3000"  # still paying the old account
    # In the database: sealed bytes and masks only (a full dump is tests/merchants' job).
    proposed = BankAccount.objects.get(merchant=team.a, status="proposed")
    stored = f"{change.payload} {change.before} {change.reason} {proposed.masked}"
    assert _leaks(stored) == [] and _leaks(bytes(proposed.iban_sealed).decode("latin-1")) == []

    change_confirm(change=change, officer=officers[1], now=now)
    html = client.get(PAGE).content.decode()
    assert "GB29 •••• •••• •••• 6819" in html and "DE89 ••••" not in html
    assert _leaks(html) == [] and _leaks(caplog.text) == []


def test_a_rejected_change_is_said_so_and_a_new_one_may_be_asked(
    team: Team, officers: tuple[User, User], now: datetime
) -> None:
    client = portal_sign_in(team.owner)
    client.post(PAGE, {"holder_name": "Supplier GmbH", "iban": NEW_IBAN})
    change = RiskChange.objects.get(kind=RiskChange.Kind.BANK_ACCOUNT_CHANGE)
    change_reject(change=change, officer=officers[1], now=now, note="Not the merchant's.")
    html = client.get(PAGE).content.decode()
    assert "did not accept the change" in html and "Change the bank account" in html
    assert BankAccount.objects.get(merchant=team.a).status == BankAccount.Status.REJECTED


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("DE88 3704 0044 0532 0130 00", "its check digits do not match"),
        ("DE89 3704 0044 0532 0130", "wrong number of characters"),
        ("ZZ89 3704 0044 0532 0130 00", "not a country that uses IBANs"),
    ],
)
def test_a_mistyped_iban_is_a_field_error_that_never_repeats_it(
    team: Team, typed: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = portal_sign_in(team.owner).post(PAGE, {"holder_name": "S GmbH", "iban": typed})
    html = response.content.decode()
    assert response.status_code == 400
    assert message in html
    assert 'aria-invalid="true"' in html.split('name="iban"')[1].split(">")[0]
    assert typed not in html and typed.replace(" ", "") not in html
    assert typed not in caplog.text and typed.replace(" ", "") not in caplog.text
    assert not BankAccount.objects.exists() and not RiskChange.objects.exists()


def test_a_second_request_while_one_waits_is_refused_in_words(team: Team) -> None:
    client = portal_sign_in(team.owner)
    client.post(PAGE, {"holder_name": "Supplier GmbH", "iban": NEW_IBAN})
    again = client.post(PAGE, {"holder_name": "Supplier GmbH", "iban": IBAN})
    assert again.status_code == 409
    assert "already waiting for the bank" in again.content.decode()
    assert BankAccount.objects.filter(merchant=team.a).count() == 1


@pytest.mark.parametrize("who", ["finance", "viewer"])
def test_finance_and_viewers_cannot_change_it(team: Team, who: str) -> None:
    response = portal_sign_in(getattr(team, who)).post(
        PAGE, {"holder_name": "Supplier GmbH", "iban": NEW_IBAN}
    )
    assert response.status_code == 403
    assert "Only an owner can change the settings" in response.content.decode()
    assert not BankAccount.objects.exists()
