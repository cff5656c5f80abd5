"""The review queue, the review page and its decisions, and exposure (financing.admin.advances)."""

from __future__ import annotations

import hashlib
import html

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from financing.models import Advance, AssignmentNotice, Facility
from financing.risk import grade_of
from financing.services.decisions import advance_approve, advance_reject
from financing.services.quotes import advance_requote_send
from ledger.models import Entry
from ledger.money import format_minor_units
from tests.financing.admin.conftest import (
    SignIn,
    _as_superuser,
    _evidence,
    _messages,
    _request,
    _rows,
    _snapshot,
    _url,
)
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


# --- the review queue and the review page -------------------------------------------------------


def test_the_review_queue_lists_open_advances(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    waiting = _request(live, n=2)
    rejected = _request(live)
    advance_reject(advance=rejected, officer=officer, now=timezone.now(), note="Duplicate")
    client = sign_in(officer)

    queue = client.get(_url("changelist")).content.decode()

    assert waiting.ref in queue and rejected.ref not in queue
    assert "2,000.00 EUR" in queue and "1,600.00 EUR" in queue  # face and advance, as money
    assert format_minor_units(waiting.fee_minor, "EUR") + " EUR" in queue
    assert f"{waiting.risk_score} ({grade_of(waiting.risk_score)})" in queue
    assert "Open (requested, requote or approved)" in queue
    everything = client.get(_url("changelist"), {"queue": "all"}).content.decode()
    assert waiting.ref in everything and rejected.ref in everything
    only_rejected = client.get(_url("changelist"), {"queue": "rejected"}).content.decode()
    assert rejected.ref in only_rejected and waiting.ref not in only_rejected


def test_the_review_page_shows_quote_risk_and_verified_evidence(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    advance = _request(live)
    (order, invoice, dispatched, delivered) = Entry.objects.filter(
        chain_id=live.merchant.pk
    ).order_by("seq")

    response = sign_in(officer).get(_url("change", advance))

    assert response.status_code == 200
    page = response.content.decode()
    for label, amount in [
        ("Face value", "1,000.00 EUR"),
        ("Advance", "800.00 EUR"),
        ("Fee", f"{format_minor_units(advance.fee_minor, 'EUR')} EUR"),
        (
            "Net paid out (advance - fee)",
            f"{format_minor_units(800_00 - advance.fee_minor, 'EUR')} EUR",
        ),
        ("Reserve (face - advance)", "200.00 EUR"),
        ("APR", f"{advance.apr} %"),
    ]:
        cell = f'<th scope="row">{html.escape(label)}</th><td class="num">{amount}</td>'
        assert cell in page, label
    assert f"Risk: {advance.risk_score} / 100, grade {grade_of(advance.risk_score)}" in page
    factors = _rows(page, "risk-factor")
    assert len(factors) == len(advance.risk_factors) == 10
    for factor, row in zip(advance.risk_factors, factors, strict=True):
        assert row == [
            factor["name"].replace("_", " ").capitalize(),
            factor["value"],
            f"{factor['points']} / {factor['max_points']}",
            factor["explanation"],
        ]
    evidence = _evidence(page)
    assert sorted(evidence) == [1, 2, 3, 4]
    for entry in (order, invoice, dispatched, delivered):
        _seq, type_, ref, _occurred, short_hash, mark = evidence[entry.seq]
        assert (type_, ref, short_hash) == (entry.type, entry.external_ref, entry.hash[:16])
        assert mark == "✓"
    assert "✗" not in page
    assert "✓ eligible" in page
    assert "Approve" in page and "Reject" in page  # an officer may decide
    assert "Authorize disbursement" not in page  # nothing to authorize yet


@pytest.mark.parametrize("forger", ["body only", "body and hash"])
def test_a_tampered_evidence_entry_gets_a_red_cross(
    live: Trade, line: Facility, officer: User, sign_in: SignIn, forger: str
) -> None:
    advance = _request(live)
    invoice = Entry.objects.get(chain_id=live.merchant.pk, type="invoice.issued")
    body = bytes(invoice.body)
    forged = body.replace(b'"1000.00"', b'"9000.00"')
    assert forged != body and len(forged) == len(body)
    if forger == "body only":
        _as_superuser("UPDATE ledger_entry SET body = %s WHERE id = %s", [forged, invoice.pk])
    else:  # a smarter forger rehashes the body; the next entry still names the old hash
        _as_superuser(
            "UPDATE ledger_entry SET body = %s, hash = %s WHERE id = %s",
            [forged, hashlib.sha256(forged).hexdigest(), invoice.pk],
        )

    page = sign_in(officer).get(_url("change", advance)).content.decode()

    evidence = _evidence(page)
    marks = {seq: cells[5] for seq, cells in evidence.items()}
    if forger == "body only":
        assert marks[invoice.seq].startswith("✗")
        assert "the body was altered" in marks[invoice.seq]
        assert {seq: mark for seq, mark in marks.items() if seq != invoice.seq} == {
            1: "✓",
            3: "✓",
            4: "✓",
        }
    else:
        assert marks[invoice.seq].startswith("✗") and "was replaced" in marks[invoice.seq]
        assert marks[invoice.seq + 1].startswith("✗")
        assert "the link is broken" in marks[invoice.seq + 1]
        assert marks[1] == "✓" and marks[4] == "✓"
    assert "some evidence does not verify" in page


# --- maker-checker through the admin ------------------------------------------------------------


def test_an_officer_approves_and_a_small_advance_disburses(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    advance = _request(live)
    client = sign_in(officer)

    response = client.post(_url("approve", advance), {"note": "Evidence checks out"}, follow=True)

    assert response.redirect_chain == [(_url("change", advance), 302)]
    assert _messages(response) == [f"Advance {advance.ref} approved and disbursed."]
    advance.refresh_from_db()
    assert advance.status == Advance.Status.DISBURSED
    assert (advance.approved_by, advance.decision_note) == (officer, "Evidence checks out")
    assert len(advance.approval_hash) == 64
    page = response.content.decode()
    assert advance.approval_hash in page and "Disbursed" in page
    assert {cells[1] for cells in _evidence(page).values()} >= {
        "receivable.assigned",
        "advance.disbursed",
    }
    assert "✗" not in page
    assert AssignmentNotice.objects.filter(advance=advance).count() == 1


def test_the_maker_cannot_authorize_his_own_approval(
    live: Trade, line: Facility, senior: User, sign_in: SignIn
) -> None:
    advance = _request(live, amount="10000.00")  # advances 8,000.00: above the threshold
    client = sign_in(senior)
    client.post(_url("approve", advance), follow=True)
    advance.refresh_from_db()
    assert advance.status == Advance.Status.APPROVED
    before = _snapshot(advance)
    page = client.get(_url("change", advance)).content.decode()
    assert "You approved this advance" in page and "Authorize disbursement" not in page

    response = client.post(_url("authorize", advance), follow=True)

    assert response.status_code == 200
    assert _messages(response) == ["The officer who approved an advance cannot authorize it."]
    assert _snapshot(advance) == before


def test_a_second_officer_authorizes_and_the_advance_disburses(
    live: Trade, line: Facility, officer: User, senior: User, sign_in: SignIn
) -> None:
    advance = _request(live, amount="10000.00")
    maker = sign_in(officer)
    maker.post(_url("approve", advance), follow=True)
    refused = maker.post(_url("authorize", advance), follow=True)  # no checker permission
    assert _messages(refused) == ["Missing permission financing.authorize_advance."]
    checker = sign_in(senior)
    assert "Authorize disbursement" in checker.get(_url("change", advance)).content.decode()

    response = checker.post(_url("authorize", advance), follow=True)

    assert _messages(response) == [f"Advance {advance.ref} approved and disbursed."]
    advance.refresh_from_db()
    assert advance.status == Advance.Status.DISBURSED
    assert (advance.approved_by, advance.authorized_by) == (officer, senior)


def test_an_auditor_is_refused_and_nothing_changes(
    live: Trade, line: Facility, officer: User, auditor: User, sign_in: SignIn
) -> None:
    waiting = _request(live)
    approved = _request(live, amount="10000.00")
    advance_approve(advance=approved, officer=officer, now=timezone.now())
    client = sign_in(auditor)
    page = client.get(_url("change", waiting)).content.decode()
    assert 'value="Approve"' not in page and 'value="Reject"' not in page
    snapshots = {a.pk: _snapshot(a) for a in (waiting, approved)}

    for verb, advance, data in [
        ("approve", waiting, {}),
        ("reject", waiting, {"note": "I would not"}),
        ("reject", approved, {"note": "I would not"}),
        ("authorize", approved, {}),
    ]:
        response = client.post(_url(verb, advance), data, follow=True)
        assert response.status_code == 200, verb
        [message] = _messages(response)
        assert message.startswith("Missing permission financing."), (verb, message)

    assert {a.pk: _snapshot(a) for a in (waiting, approved)} == snapshots
    assert not AssignmentNotice.objects.exists()


def test_changed_evidence_refuses_the_approval_with_each_invoices_reasons(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    advance = _request(live)
    [ref] = advance.assignments.values_list("invoice_ref", flat=True)
    live.returned(ref.replace("INV", "ORD"))  # the goods came back after the request

    response = sign_in(officer).post(_url("approve", advance), follow=True)

    order = ref.replace("INV", "ORD")
    assert _messages(response) == [
        f"Some invoices cannot be financed now. {ref}: RETURNED"
        f" (Goods of order '{order}' were returned: 'SHP-{order}'.)"
    ]
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.REQUESTED
    page = response.content.decode()
    assert "shipment.returned" in {cells[1] for cells in _evidence(page).values()}
    assert "✗ not eligible" in page and "RETURNED" in page


def test_a_credit_note_after_approval_voids_it_at_authorization(
    live: Trade, line: Facility, officer: User, senior: User, sign_in: SignIn
) -> None:
    advance = _request(live, amount="10000.00")
    [ref] = advance.assignments.values_list("invoice_ref", flat=True)
    advance_approve(advance=advance, officer=officer, now=timezone.now())
    live.credited(ref, amount="100.00")

    response = sign_in(senior).post(_url("authorize", advance), follow=True)

    [message] = _messages(response)
    assert message.startswith("Approval void: Some invoices cannot be financed now.")
    assert message.endswith("It needs a fresh approval.")
    page = response.content.decode()
    assert "✗ not eligible" in page and "CREDITED" in page  # the live verdict says why
    advance.refresh_from_db()
    assert (advance.status, advance.approved_by) == (Advance.Status.REQUESTED, None)
    note = Entry.objects.get(chain_id=live.merchant.pk, type="invoice.credited")
    evidence = _evidence(page)
    assert evidence[note.seq][1:3] == ["invoice.credited", note.external_ref]
    assert evidence[note.seq][5] == "✓"


def test_a_rejection_needs_a_note_and_releases_the_holds(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    advance = _request(live)
    client = sign_in(officer)

    empty = client.post(_url("reject", advance), {"note": "  "}, follow=True)
    assert _messages(empty) == ["Say why the advance is rejected; the merchant will read it."]
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.REQUESTED

    client.post(_url("reject", advance), {"note": "The debtor disputes the delivery."}, follow=True)
    advance.refresh_from_db()
    assert advance.status == Advance.Status.REJECTED
    assert advance.decision_note == "The debtor disputes the delivery."
    assert set(advance.assignments.values_list("status", flat=True)) == {"released"}
    again = client.post(_url("approve", advance), follow=True)
    assert _messages(again) == [f"Advance {advance.ref} is rejected."]


def test_decisions_are_posts_with_a_csrf_token(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    advance = _request(live)
    client = sign_in(officer)
    assert client.get(_url("approve", advance)).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies  # the same verified session, without the form's token

    assert strict.post(_url("approve", advance)).status_code == 403
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.REQUESTED


def test_an_unknown_advance_is_a_404_not_an_error(officer: User, sign_in: SignIn) -> None:
    client = sign_in(officer)
    assert client.get(reverse("admin:financing_advance_change", args=["999999"])).status_code == 404
    assert client.post(reverse("admin:financing_advance_approve", args=["nope"])).status_code == 404


# --- exposure -----------------------------------------------------------------------------------


def test_the_exposure_page_shows_the_right_figures(
    live: Trade, line: Facility, officer: User, auditor: User, sign_in: SignIn
) -> None:
    disbursed = _request(live, n=2)  # two invoices, 800.00 advanced on each
    advance_approve(advance=disbursed, officer=officer, now=timezone.now())
    _request(live)  # 800.00 more, requested only
    merchant = live.merchant  # every invoice is owed by the marketplace

    page = sign_in(auditor).get(_url("exposure")).content.decode()

    [merchant_row] = _rows(page, "merchant-exposure")
    assert merchant_row == [
        f"{merchant.legal_name} {merchant.public_id}",
        "EUR",
        "1,600.00 EUR",  # outstanding: the disbursed advance
        "1",
        "0.00 EUR",
        "2,400.00 EUR",  # committed: disbursed and requested
        "100,000.00 EUR",
        "2.4 %",
    ]
    [debtor_row] = _rows(page, "debtor-exposure")
    assert debtor_row == [
        "Acme Marketplace",
        "marketplace",
        "EUR",
        "2,400.00 EUR",
        "3,000.00 EUR",
        "3",
        "1",
    ]


def test_the_review_shows_a_requote_and_a_non_accrual_to_officers(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    """Issue 8, items 9 and 11: what waits for the merchant, and what stopped accruing."""
    advance = _request(live)
    Facility.objects.filter(pk=line.pk).update(annual_rate_bp=2400)
    assert advance_requote_send(advance=advance, now=timezone.now(), reason="Rate review")
    Advance.objects.filter(pk=advance.pk).update(non_accrual_on=live.today)
    client = sign_in(officer)

    review = client.get(_url("change", advance)).content.decode()
    queue = client.get(_url("changelist")).content.decode()
    flagged = client.get(_url("changelist") + "?non_accrual=yes").content.decode()

    assert "new price awaiting the merchant (requote)" in review
    assert "Non-accrual since" in review and live.today.isoformat() in review
    assert advance.ref in queue and advance.ref in flagged
