"""Notices go to the debtor who owes the money (issue 8, item 12).

A business buyer hears by e-mail with the notice as a PDF; a marketplace by webhook (see
test_notices.py). Each invoice carries its own payment reference. A notice with no address or
endpoint waits, and the sweep sends it once one exists; a failed notice is re-sent by an
officer; every attempt is in the notice's delivery history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import TestCase

import financing.tasks
from financing.exceptions import NotPermitted, WrongState
from financing.models import Advance, AssignmentNotice, Facility, NoticeAttempt, WebhookEndpoint
from financing.notices import notice_deliver, notice_resend, payment_reference
from financing.services.decisions import advance_approve
from financing.services.requests import advance_request
from merchants.credentials import secret_open
from merchants.models import Debtor, Marketplace
from tests.conftest import NOW
from tests.financing.conftest import NoticeTaskRecorder, Trade

BUYER = {"kind": "business", "name": "Bäckerei Müller GmbH", "tax_id": "DE811907980"}
Outcome = NoticeAttempt.Outcome


def sweep() -> int:
    """The beat task's body; its enqueues run at once, as after a commit."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return int(financing.tasks.notice_sweep_run())


def b2b_fundable(trade: Trade, n: int, debtor: dict[str, str], tag: str) -> list[str]:
    refs = []
    for k in range(n):
        trade.order(f"ORD-{tag}-{k}")
        trade.invoice(f"INV-{tag}-{k}", f"ORD-{tag}-{k}", debtor={**debtor, "country": "DE"})
        trade.delivered(f"ORD-{tag}-{k}")
        refs.append(f"INV-{tag}-{k}")
    return refs


def disbursed(trade: Trade, refs: list[str], officer: User, key: str) -> Advance:
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key=key, now=NOW)
    advance = advance_approve(advance=advance, officer=officer, now=NOW)
    assert advance.status == Advance.Status.DISBURSED
    return advance


@pytest.fixture
def line(trade: Trade, open_facility: Callable[..., Facility]) -> Facility:
    return open_facility(trade.merchant)


@pytest.mark.django_db
def test_a_business_buyer_is_emailed_the_notice_as_a_pdf_and_the_marketplace_is_not(
    trade: Trade,
    line: Facility,
    officer: User,
    marketplace: Marketplace,
    notices_enqueued: NoticeTaskRecorder,
) -> None:
    WebhookEndpoint.objects.create(marketplace=marketplace, url="https://example.invalid/hook")
    refs = b2b_fundable(trade, 2, {**BUYER, "email": "ap@mueller.example"}, "b2b")
    advance = disbursed(trade, refs, officer, "b2b")

    [notice] = AssignmentNotice.objects.filter(advance=advance)  # the buyer's, no marketplace's
    assert (notice.channel, notice.marketplace_id) == (AssignmentNotice.Channel.EMAIL, None)
    assert notice.debtor.name == BUYER["name"]
    assert notice.debtor.email == "ap@mueller.example"  # taken from the invoice's evidence

    notice_deliver(notice_id=notice.pk, now=NOW)

    [message] = mail.outbox
    assert message.to == ["ap@mueller.example"]
    assert (
        "Notice of assignment" in message.subject and trade.merchant.legal_name in message.subject
    )
    references = {
        a.invoice_ref: payment_reference(a.fingerprint) for a in advance.assignments.all()
    }
    assert len(set(references.values())) == 2  # one per invoice, not one per advance
    for ref, reference in references.items():
        assert f"{ref} | " in message.body and reference in message.body
    assert "1,000.00 EUR" in message.body
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == (f"notice-of-assignment-{advance.ref}.pdf", "application/pdf")
    assert content[:5] == b"%PDF-" and len(content) > 1000
    notice.refresh_from_db()
    assert (notice.status, notice.attempts, notice.last_error) == ("delivered", 1, "")
    [attempt] = notice.history.all()
    assert (attempt.channel, attempt.destination, attempt.outcome) == (
        "email",
        "ap@mueller.example",
        Outcome.DELIVERED,
    )

    notice_deliver(notice_id=notice.pk, now=NOW)  # a redelivered task: the buyer hears once
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_each_debtor_of_one_advance_gets_its_own_notice(
    trade: Trade, line: Facility, officer: User, notices_enqueued: NoticeTaskRecorder
) -> None:
    owed_by_marketplace = trade.fundable(1)
    owed_by_buyer = b2b_fundable(trade, 1, {**BUYER, "email": "ap@mueller.example"}, "mix")

    advance = disbursed(trade, owed_by_marketplace + owed_by_buyer, officer, "mix")

    notices = {n.channel: n for n in AssignmentNotice.objects.filter(advance=advance)}
    assert set(notices) == {"webhook", "email"}
    assert [r["ref"] for r in notices["webhook"].payload["receivables"]] == owed_by_marketplace
    assert [r["ref"] for r in notices["email"].payload["receivables"]] == owed_by_buyer
    assert notices["email"].payload["debtor"]["tax_id"] == BUYER["tax_id"]


@pytest.mark.django_db
def test_a_notice_without_an_address_waits_and_the_sweep_sends_it_once_one_exists(
    trade: Trade, line: Facility, officer: User, notices_enqueued: NoticeTaskRecorder
) -> None:
    refs = b2b_fundable(trade, 1, BUYER, "wait")  # the invoice names no e-mail address
    advance = disbursed(trade, refs, officer, "wait")
    notice = AssignmentNotice.objects.get(advance=advance)

    notice_deliver(notice_id=notice.pk, now=NOW)

    notice.refresh_from_db()
    assert (notice.status, notice.waiting) == (AssignmentNotice.Status.PENDING, True)
    assert notice.last_error == "The buyer has no e-mail address on file."
    assert mail.outbox == []
    notices_enqueued.notice_ids.clear()
    assert sweep() == 0  # nothing reachable yet

    Debtor.objects.filter(pk=notice.debtor_id).update(email="invoices@mueller.example")
    assert sweep() == 1
    assert sweep() == 0  # claimed once: never sent twice
    assert notices_enqueued.notice_ids == [notice.pk]

    notice_deliver(notice_id=notice.pk, now=NOW)
    assert [m.to for m in mail.outbox] == [["invoices@mueller.example"]]
    outcomes = list(notice.history.values_list("outcome", flat=True))
    assert outcomes == [Outcome.UNADDRESSED, Outcome.DELIVERED]


@pytest.mark.django_db
def test_a_marketplace_notice_waits_for_an_endpoint_and_the_sweep_sends_it(
    requested_on_marketplace: Advance,
    officer: User,
    marketplace: Marketplace,
    notices_enqueued: NoticeTaskRecorder,
) -> None:
    advance_approve(advance=requested_on_marketplace, officer=officer, now=NOW)
    notice = AssignmentNotice.objects.get(advance=requested_on_marketplace)
    notice_deliver(notice_id=notice.pk, now=NOW)
    notices_enqueued.notice_ids.clear()
    assert sweep() == 0

    endpoint = WebhookEndpoint.objects.create(marketplace=marketplace, url="https://x.invalid/h")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
    assert sweep() == 0  # an inactive endpoint is no endpoint
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=True)
    assert sweep() == 1
    assert notices_enqueued.notice_ids == [notice.pk]


@pytest.fixture
def requested_on_marketplace(trade: Trade, line: Facility) -> Advance:
    refs = trade.fundable(1)
    return advance_request(merchant=trade.merchant, refs=refs, request_key="mkt", now=NOW)


@pytest.fixture
def failed_notice(
    trade: Trade, line: Facility, officer: User, notices_enqueued: NoticeTaskRecorder
) -> AssignmentNotice:
    refs = b2b_fundable(trade, 1, {**BUYER, "email": "ap@mueller.example"}, "fail")
    advance = disbursed(trade, refs, officer, "fail")
    notice = AssignmentNotice.objects.get(advance=advance)
    financing.notices.notice_give_up(notice_id=notice.pk, error="Gave up after retries", now=NOW)
    notices_enqueued.notice_ids.clear()
    notice.refresh_from_db()
    return notice


@pytest.mark.django_db
def test_an_officer_re_sends_a_failed_notice_and_the_history_names_him(
    failed_notice: AssignmentNotice,
    officer: User,
    notices_enqueued: NoticeTaskRecorder,
    django_capture_on_commit_callbacks: Any,
) -> None:
    assert failed_notice.status == AssignmentNotice.Status.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        notice = notice_resend(notice=failed_notice, officer=officer, now=NOW)

    assert (notice.status, notice.last_error) == (AssignmentNotice.Status.PENDING, "")
    assert notices_enqueued.notice_ids == [notice.pk]
    gave_up, resent = notice.history.all()
    assert gave_up.outcome == Outcome.GAVE_UP
    assert (resent.outcome, resent.officer) == (Outcome.RESENT, officer)

    notice_deliver(notice_id=notice.pk, now=NOW)
    assert len(mail.outbox) == 1
    with pytest.raises(WrongState, match="Only a failed notice"):
        notice_resend(notice=notice, officer=officer, now=NOW)  # delivered now


@pytest.mark.django_db
def test_an_auditor_may_not_re_send(failed_notice: AssignmentNotice, auditor: User) -> None:
    with pytest.raises(NotPermitted):
        notice_resend(notice=failed_notice, officer=auditor, now=NOW)
    failed_notice.refresh_from_db()
    assert failed_notice.status == AssignmentNotice.Status.FAILED
    assert not failed_notice.history.filter(outcome=Outcome.RESENT).exists()


def test_payment_references_are_valid_iso_11649_creditor_references() -> None:
    reference = payment_reference("8fabcbd410" * 6 + "abcd")
    assert reference.startswith("RF") and len(reference) == 24
    rearranged = reference[4:] + reference[:4]
    assert int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    assert payment_reference("0" * 64) != payment_reference("1" + "0" * 63)


@pytest.mark.django_db
def test_a_webhook_secret_is_sealed_at_rest(marketplace: Marketplace) -> None:
    endpoint = WebhookEndpoint.objects.create(marketplace=marketplace, url="https://x.invalid/h")
    stored = bytes(WebhookEndpoint.objects.values_list("secret_sealed", flat=True).get())

    assert len(endpoint.secret) == 64
    assert endpoint.secret.encode() not in stored
    assert secret_open(stored) == endpoint.secret
    assert not hasattr(WebhookEndpoint, "secret_clear")
    assert "secret" not in {f.name for f in WebhookEndpoint._meta.get_fields()}
