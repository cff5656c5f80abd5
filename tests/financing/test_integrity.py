"""The financing tables checked against the signed chain (issue 12).

A database superuser flips rows behind the services' back: an assignment to released, an
advance back to approved, a journal amount. The chain is untouched, so ``verify_ledger`` and
the books' own sums stay green; ``verify_financing`` (and ``verify_books``, which runs it as a
registered check) exits 1 naming the row, and the flipped invoice stays unfundable. Each case
has its negative control: without the check, both verifiers are green.
"""

from __future__ import annotations

from datetime import datetime
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from financing import evidence
from financing.books import verification
from financing.books.models import BooksVerification, JournalEntry
from financing.books.verification import books_verify
from financing.eligibility import Code, verdicts
from financing.exceptions import AdvanceRefused
from financing.integrity import financing_integrity_problem, financing_verify
from financing.models import Advance, Assignment, Facility
from financing.services.requests import advance_quote
from financing.tasks import books_verify_run
from ledger import verification as ledger_verification
from ledger.verification import ledger_verify
from merchants.models import Merchant
from tests.financing.conftest import TODAY, Trade
from tests.financing.integrity_helpers import (
    advance_roll_back,
    assignment_flip_released,
    journal_shift,
    superuser,
)
from tests.financing.settlement_helpers import disbursed, payout, settle_pending

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


class Funded:
    """Two advances of one merchant: the first's receivable paid and settled, the second's
    receivable assigned and owed."""

    def __init__(self, trade: Trade, officer: User, now: datetime) -> None:
        self.trade = trade
        self.paid, self.owed = trade.fundable(2)
        self.first = disbursed(trade, [self.paid], officer, now)
        self.second = disbursed(trade, [self.owed], officer, now)
        payout(trade, [(self.paid, "1000.00")])
        assert settle_pending(now) == 1


@pytest.fixture
def funded(trade: Trade, facility: Facility, officer: User, now: datetime) -> Funded:
    return Funded(trade, officer, now)


@pytest.fixture
def unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative control: both verifiers without the financing check, as before issue 12."""
    monkeypatch.setattr(verification, "_checks", [])
    monkeypatch.setattr(ledger_verification, "_checks", [])


def run(command: str) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(command, stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code or 0), err.getvalue()
    return 0, out.getvalue()


def broken_naming(*words: str) -> None:
    """The three commands exit 1 naming ``words``; the chain itself is intact."""
    assert ledger_verify().intact
    for command in ("verify_financing", "verify_books", "verify_ledger"):
        code, said = run(command)
        assert code == 1, (command, said)
        for word in words:
            assert word in said, (command, said)


def both_verifiers_green() -> None:
    assert ledger_verify().intact
    assert run("verify_ledger")[0] == 0
    report = books_verify()
    assert report.intact, report.first_problem


def test_sound_tables_agree_with_the_chain(funded: Funded) -> None:
    report = financing_verify()

    assert report.intact, report.first_problem
    assert (report.merchants, report.assignments, report.advances) == (1, 2, 2)
    assert report.journal_entries == 3  # two disbursements, one settlement
    assert run("verify_financing")[0] == 0
    assert run("verify_books")[0] == 0
    assert run("verify_ledger")[0] == 0
    assert financing_integrity_problem in verification._checks


def test_an_assignment_flipped_to_released_is_named_and_stays_unfundable(funded: Funded) -> None:
    assignment_flip_released(funded.owed)

    broken_naming(
        f"assignment of invoice '{funded.owed}' to advance '{funded.second.ref}'",
        "expected assigned or settled, found released",
    )
    [verdict] = verdicts(funded.trade.merchant, TODAY, [funded.owed])
    assert verdict.codes == [Code.ASSIGNED_ON_CHAIN.value]
    assert funded.second.ref in verdict.reasons[0].message
    with pytest.raises(AdvanceRefused):
        advance_quote(
            merchant=Merchant.objects.get(pk=funded.trade.merchant.pk),
            refs=[funded.owed],
            today=TODAY,
        )


def test_the_nightly_run_records_the_flip_where_officers_look(funded: Funded) -> None:
    assignment_flip_released(funded.owed)

    run_id = books_verify_run()

    run_ = BooksVerification.objects.get(pk=run_id)
    assert run_.outcome == BooksVerification.Outcome.BROKEN
    assert f"assignment of invoice '{funded.owed}'" in run_.problem


def test_without_the_check_the_flip_hides(funded: Funded, unchecked: None) -> None:
    assignment_flip_released(funded.owed)

    both_verifiers_green()


def test_without_the_chain_read_the_flipped_invoice_is_fundable_again(
    funded: Funded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The negative control of eligibility's defence in depth: the assignment rows alone say
    # nobody holds the invoice.
    monkeypatch.setattr(evidence, "_assigned_on_chain_later", lambda *args: dict)
    assignment_flip_released(funded.owed)

    [verdict] = verdicts(funded.trade.merchant, TODAY, [funded.owed])

    assert verdict.eligible


def test_a_settled_invoice_is_not_fundable_again_either(funded: Funded) -> None:
    [verdict] = verdicts(funded.trade.merchant, TODAY, [funded.paid])

    assert Code.ASSIGNED_ON_CHAIN in {r.code for r in verdict.reasons}


def test_an_assignment_flipped_to_settled_without_its_payment_is_named(funded: Funded) -> None:
    with superuser() as cursor:
        cursor.execute(
            "UPDATE financing_assignment SET status = 'settled', closed_at = now()"
            " WHERE invoice_ref = %s",
            [funded.owed],
        )

    broken_naming(f"assignment of invoice '{funded.owed}'", "settled", "found 1000.00 EUR")


def test_an_advance_rolled_back_is_named(funded: Funded) -> None:
    advance_roll_back(funded.second.ref)

    broken_naming(f"advance '{funded.second.ref}'", "status", "found approved")


def test_without_the_check_the_rollback_hides(funded: Funded, unchecked: None) -> None:
    advance_roll_back(funded.second.ref)

    both_verifiers_green()


def test_a_repaid_advance_put_back_to_disbursed_is_named(funded: Funded) -> None:
    Advance.objects.filter(pk=funded.first.pk).update(status=Advance.Status.DISBURSED)

    broken_naming(f"advance '{funded.first.ref}'", "expected repaid, found disbursed")


def test_a_disbursement_journal_amount_changed_is_named(funded: Funded) -> None:
    key = f"disburse:{funded.second.ref}"
    journal_shift(key, 5_000, debit="advances_receivable", credit="disbursement_clearing")

    broken_naming(
        f"journal entry '{key}'", "advances_receivable", "expected 1000.00 EUR, found 1050.00 EUR"
    )


def test_without_the_check_the_journal_change_hides(funded: Funded, unchecked: None) -> None:
    key = f"disburse:{funded.second.ref}"
    journal_shift(key, 5_000, debit="advances_receivable", credit="disbursement_clearing")

    both_verifiers_green()


def test_a_settlement_journal_amount_changed_is_named(funded: Funded) -> None:
    [key] = JournalEntry.objects.filter(key__startswith="settle:").values_list("key", flat=True)
    journal_shift(key, -1_000, debit="collections_clearing", credit="merchant_reserve_payable")

    broken_naming(f"journal entry '{key}'", "collections_clearing", "found 990.00 EUR")


def test_a_row_the_chain_never_recorded_is_named(funded: Funded) -> None:
    # The reverse direction: the second advance's assignment row pointed at the first advance
    # (to which the chain never assigned that invoice).
    Assignment.objects.filter(invoice_ref=funded.owed).update(advance=funded.first)

    broken_naming(f"assignment of invoice '{funded.owed}' to advance '{funded.second.ref}'")
