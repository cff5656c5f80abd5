"""Merchant bank accounts (issue 10): validated, sealed at rest, masked everywhere, changed only
by four eyes; the plaintext is never in the database, a page or a log."""

from __future__ import annotations

import logging
import subprocess
from datetime import datetime
from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse

from financing.exceptions import MakerCheckerViolation, NotPermitted, WrongState
from financing.models import Payment, RiskChange
from financing.roles import AUDITOR, OFFICER, SENIOR_OFFICER
from financing.services.bank_accounts import bank_account_propose
from financing.services.payment_files import payment_batch_create
from financing.services.proposals import change_confirm, change_reject
from merchants.bank_details import account_mask, bank_details_validate, bank_number_open
from merchants.exceptions import BankDetailsInvalid
from merchants.models import BankAccount, Merchant
from tests.financing.conftest import staff
from tests.financing.reconciliation.helpers import IBAN, account_active, payment_pending

# The IBAN as people write it, and its bank-internal part: neither may leak either.
SPELLINGS = (IBAN, "DE89 3704 0044 0532 0130 00", "370400440532013000", "0532013000")
OTHER_IBAN = "GB29NWBK60161331926819"


@pytest.fixture
def officer(db: None) -> User:
    return staff("bank-officer", OFFICER)


@pytest.fixture
def senior(db: None) -> User:
    return staff("bank-senior", SENIOR_OFFICER)


def _leaks(text: str | bytes) -> list[str]:
    haystack = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return [s for s in SPELLINGS if s in haystack]


# Validation and masking, no database.


def test_an_iban_is_validated_and_normalised() -> None:
    details = bank_details_validate(iban="de89 3704 0044 0532 0130 00")
    assert (details.kind, details.number, details.bic) == ("iban", IBAN, "")
    assert IBAN not in repr(details)


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ({"iban": "DE89370400440532013001"}, "checksum"),
        ({"iban": "DE8937040044053201300"}, "length"),
        ({"iban": IBAN, "account_number": "12345678", "bic": "COBADEFFXXX"}, "Give an IBAN, or"),
        ({"account_number": "12345678"}, "needs the BIC"),
        ({"account_number": "12345678", "bic": "NOTABIC!"}, "BIC is not valid"),
    ],
    ids=["checksum", "length", "both", "local-without-bic", "bad-bic"],
)
def test_invalid_details_are_refused_without_repeating_the_number(
    given: dict[str, str], reason: str
) -> None:
    with pytest.raises(BankDetailsInvalid) as refused:
        bank_details_validate(**given)
    assert reason in str(refused.value)
    assert not _leaks(str(refused.value)) and "12345678" not in str(refused.value)


def test_a_local_account_goes_with_its_bic() -> None:
    details = bank_details_validate(account_number="1234 5678-90", bic="cobadeffxxx")
    assert (details.kind, details.number, details.bic) == ("local", "1234567890", "COBADEFFXXX")


def test_masks_show_the_country_and_last_four_only() -> None:
    assert account_mask(IBAN) == "DE89 •••• •••• •••• 3000"
    assert account_mask("1234567890") == "•••• 7890"


# Four eyes.


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_proposed_account_pays_nobody_until_a_different_senior_confirms_it(
    merchant: Merchant, officer: User, senior: User, now: datetime
) -> None:
    change = bank_account_propose(
        merchant=merchant,
        holder_name="Acme GmbH",
        iban=IBAN,
        officer=officer,
        reason="Bank letter on file.",
        now=now,
    )
    account = BankAccount.objects.get()
    assert (account.status, account.masked) == ("proposed", "DE89 •••• •••• •••• 3000")
    assert change.kind == RiskChange.Kind.BANK_ACCOUNT_CHANGE
    assert not _leaks(repr(change.payload) + repr(change.before))
    with pytest.raises(NotPermitted):
        change_confirm(change=change, officer=staff("junior", OFFICER), now=now)
    assert BankAccount.objects.get().status == "proposed"

    change_confirm(change=change, officer=senior, now=now)

    account.refresh_from_db()
    assert account.status == BankAccount.Status.ACTIVE
    assert bank_number_open(bytes(account.iban_sealed)) == IBAN


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_senior_may_not_confirm_their_own_proposal(
    merchant: Merchant, senior: User, now: datetime
) -> None:
    change = bank_account_propose(
        merchant=merchant, holder_name="Acme", iban=IBAN, officer=senior, reason="x", now=now
    )
    with pytest.raises(MakerCheckerViolation):
        change_confirm(change=change, officer=senior, now=now)
    assert BankAccount.objects.get().status == "proposed"


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_rejected_proposal_ends_rejected_and_the_active_account_stays(
    merchant: Merchant, officer: User, senior: User, now: datetime
) -> None:
    active = account_active(merchant, officer, senior, now)
    change = bank_account_propose(
        merchant=merchant,
        holder_name="Acme GmbH",
        iban=OTHER_IBAN,
        officer=officer,
        reason="Phone call.",
        now=now,
    )
    change_reject(change=change, officer=senior, now=now, note="Not on the bank letter.")
    proposed = BankAccount.objects.get(pk=change.payload["bank_account"])
    assert proposed.status == BankAccount.Status.REJECTED
    active.refresh_from_db()
    assert active.status == BankAccount.Status.ACTIVE
    # Terminal: the rejected account can never be confirmed into use later.
    with pytest.raises(WrongState):
        change_confirm(change=change, officer=senior, now=now)
    assert BankAccount.objects.get(pk=proposed.pk).status == BankAccount.Status.REJECTED
    # And a new proposal may follow at once.
    bank_account_propose(
        merchant=merchant, holder_name="Acme", iban=OTHER_IBAN, officer=officer, reason="x", now=now
    )


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_confirmed_change_retires_the_old_account(
    merchant: Merchant, officer: User, senior: User, now: datetime
) -> None:
    old = account_active(merchant, officer, senior, now)
    new = account_active(merchant, officer, senior, now, iban=OTHER_IBAN)
    old.refresh_from_db()
    assert (old.status, new.status) == ("retired", "active")


@pytest.mark.postgres
@pytest.mark.django_db
def test_an_auditor_may_not_propose_an_account(merchant: Merchant, now: datetime) -> None:
    with pytest.raises(NotPermitted):
        bank_account_propose(
            merchant=merchant,
            holder_name="Acme",
            iban=IBAN,
            officer=staff("auditor-x", AUDITOR),
            reason="x",
            now=now,
        )
    assert not BankAccount.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_an_invalid_iban_is_refused_by_the_proposal_too(
    merchant: Merchant, officer: User, now: datetime
) -> None:
    with pytest.raises(WrongState, match="checksum") as refused:
        bank_account_propose(
            merchant=merchant,
            holder_name="Acme",
            iban="DE89370400440532013001",
            officer=officer,
            reason="x",
            now=now,
        )
    assert "0532013001" not in str(refused.value)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_database_keeps_one_active_account_per_merchant(
    merchant: Merchant, officer: User, senior: User, now: datetime
) -> None:
    active = account_active(merchant, officer, senior, now)
    second = BankAccount.objects.create(
        merchant=merchant,
        holder_name="x",
        iban_sealed=b"sealed",
        masked="•••• 0000",
        status="proposed",
        created_at=now,
    )
    with (
        pytest.raises(IntegrityError, match="bankaccount_one_active_per_merchant"),
        transaction.atomic(),
    ):
        BankAccount.objects.filter(pk=second.pk).update(status="active")
    # Negative control: with the first retired, the second may be active.
    BankAccount.objects.filter(pk=active.pk).update(status="retired")
    BankAccount.objects.filter(pk=second.pk).update(status="active")


# Sealing and rotation.

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.mark.postgres
@pytest.mark.django_db
def test_rotation_old_ciphertexts_stay_readable_until_resealed(
    settings, merchant: Merchant, officer: User, senior: User, now: datetime
) -> None:
    settings.CHAINFIN_SEALING_KEYS = [OLD]
    account = account_active(merchant, officer, senior, now)
    sealed_under_old = bytes(account.iban_sealed)

    settings.CHAINFIN_SEALING_KEYS = [NEW, OLD]
    assert bank_number_open(sealed_under_old) == IBAN  # the old key still opens it
    out = StringIO()
    call_command("reseal_secrets", stdout=out)
    assert "merchants.BankAccount.iban_sealed: 1 resealed" in out.getvalue()
    account.refresh_from_db()
    assert bytes(account.iban_sealed) != sealed_under_old

    settings.CHAINFIN_SEALING_KEYS = [NEW]
    assert bank_number_open(bytes(account.iban_sealed)) == IBAN
    with pytest.raises(InvalidToken):  # negative control: the old ciphertext needs the old key
        bank_number_open(sealed_under_old)


# Nowhere in the clear: database, pages, logs.


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_dump_of_the_database_never_holds_the_plaintext(
    merchant: Merchant, officer: User, senior: User, now: datetime, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    account_active(merchant, officer, senior, now)
    payment_pending(merchant, now)
    payment_batch_create(currency="EUR", scheme="pain.001.001.09", officer=officer, now=now)
    assert Payment.objects.get().status == "batched"  # the file with the IBAN exists

    database = connection.settings_dict
    dump = subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "-h",
            database["HOST"] or "127.0.0.1",
            "-p",
            str(database["PORT"] or 5432),
            "-U",
            database["USER"],
            database["NAME"],
        ],
        capture_output=True,
        check=True,
        env={"PGPASSWORD": database["PASSWORD"] or ""},
    ).stdout
    assert b"merchants_bankaccount" in dump and "DE89 •••• •••• •••• 3000".encode() in dump
    assert _leaks(dump) == []
    assert _leaks(caplog.text) == []


@pytest.mark.postgres
@pytest.mark.django_db
def test_admin_pages_show_the_mask_never_the_number(
    merchant: Merchant,
    officer: User,
    senior: User,
    now: datetime,
    officer_client_factory,
    caplog,
) -> None:
    caplog.set_level(logging.DEBUG)
    account = account_active(merchant, officer, senior, now)
    payment_pending(merchant, now)
    batch = payment_batch_create(currency="EUR", scheme="pain.001.001.03", officer=officer, now=now)
    client: Client = officer_client_factory(senior)
    change = RiskChange.objects.get()
    pages = [
        reverse("admin:merchants_bankaccount_changelist"),
        reverse("admin:merchants_bankaccount_change", args=[account.pk]),
        reverse("admin:merchants_bankaccount_propose"),
        reverse("admin:financing_riskchange_changelist"),
        reverse("admin:financing_riskchange_change", args=[change.pk]),
        reverse("admin:financing_payment_changelist"),
        reverse("admin:financing_paymentbatch_changelist"),
        reverse("admin:financing_paymentbatch_change", args=[batch.pk]),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert _leaks(response.content) == [], page
    assert "DE89 •••• •••• •••• 3000" in client.get(pages[0]).content.decode()
    # The one place the number leaves: the payment file, downloaded by who may write one.
    download = client.get(reverse("admin:financing_paymentbatch_download", args=[batch.pk]))
    assert download.status_code == 200 and IBAN.encode() in download.content
    assert _leaks(caplog.text) == []


@pytest.mark.postgres
@pytest.mark.django_db
def test_proposing_through_the_admin_never_echoes_the_number(
    merchant: Merchant, officer: User, officer_client_factory, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    client: Client = officer_client_factory(officer)
    url = reverse("admin:merchants_bankaccount_propose")
    form = {"merchant": merchant.pk, "holder_name": "Acme", "reason": "Bank letter"}

    refused = client.post(url, {**form, "iban": "DE89370400440532013001"})
    assert refused.status_code == 200 and b"checksum" in refused.content
    assert b"0532013001" not in refused.content

    proposed = client.post(url, {**form, "iban": IBAN})
    assert proposed.status_code == 302
    assert BankAccount.objects.get().status == "proposed"
    assert _leaks(caplog.text) == []
