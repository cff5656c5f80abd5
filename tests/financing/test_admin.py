"""The officer admin for financing, driven through the real admin login (password and TOTP).

Every decision is a POST to the admin that lands in ``financing.services``; the tests check what
the officer sees (pages, messages, marks) and what the database holds afterwards. The test
client re-raises any exception a view lets escape, so "no 500" is checked on every request.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from financing.models import (
    Advance,
    Assignment,
    AssignmentNotice,
    Blacklisting,
    Facility,
    FacilityChange,
    Receivable,
    WebhookEndpoint,
)
from financing.risk import grade_of
from financing.services.blacklist import blacklist_add
from financing.services.decisions import advance_approve, advance_reject
from financing.services.facilities import facility_change
from financing.services.requests import advance_request
from ledger.models import Entry
from ledger.money import format_minor_units
from merchants.models import Marketplace, Merchant
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

SignIn = Callable[[User], Client]


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture
def live(verified_merchant: Merchant, marketplace: Marketplace) -> Trade:
    """Evidence dated from the real clock: the admin decides with ``timezone.now()``."""
    now = timezone.now()
    return Trade(verified_merchant, marketplace.code, now=now, today=now.date())


@pytest.fixture
def line(live: Trade, open_facility: Callable[..., Facility]) -> Facility:
    """A EUR line of 100,000.00 whose second-officer threshold is 5,000.00."""
    return open_facility(live.merchant)


@pytest.fixture
def sign_in(officer_client_factory: Callable[..., Client]) -> SignIn:
    return lambda user: officer_client_factory(user)


def _request(trade: Trade, n: int = 1, amount: str = "1000.00") -> Advance:
    refs = trade.fundable(n, amount=amount, due_in_days=30)
    return advance_request(
        merchant=trade.merchant, refs=refs, request_key=f"key-{refs[0]}", now=timezone.now()
    )


def _url(name: str, advance: Advance | None = None) -> str:
    args = [quote(advance.pk)] if advance is not None else []
    return reverse(f"admin:financing_advance_{name}", args=args)


def _cells(row: str) -> list[str]:
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


def _rows(page: str, css_class: str) -> list[list[str]]:
    return [_cells(row) for row in re.findall(rf'<tr class="{css_class}">(.*?)</tr>', page, re.S)]


def _evidence(page: str) -> dict[int, list[str]]:
    """Evidence rows by seq: [seq, type, ref, occurred, hash, verified]."""
    return {int(cells[0]): cells for cells in _rows(page, "evidence-entry")}


def _messages(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _snapshot(advance: Advance) -> dict[str, Any]:
    return dict(Advance.objects.filter(pk=advance.pk).values().get())


def _as_superuser(sql: str, params: list[Any]) -> None:
    """Run ``sql`` with ledger_entry's append-only triggers off, as only a superuser can."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE ledger_entry DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE ledger_entry ENABLE TRIGGER USER")


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
    assert "2000.00 EUR" in queue and "1600.00 EUR" in queue  # face and advance, as money
    assert format_minor_units(waiting.fee_minor, "EUR") + " EUR" in queue
    assert f"{waiting.risk_score} ({grade_of(waiting.risk_score)})" in queue
    assert "Open (requested or approved)" in queue
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
        ("Face value", "1000.00 EUR"),
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
    assert len(factors) == len(advance.risk_factors) == 8
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

    assert _messages(response) == [
        f"Some invoices cannot be financed now. {ref}: RETURNED (Goods of the order were returned.)"
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


# --- facilities ---------------------------------------------------------------------------------


def _facility_form(facility: Facility, **changes: str) -> dict[str, str]:
    data = {
        "limit_minor": format_minor_units(facility.limit_minor, facility.currency),
        "checker_threshold_minor": format_minor_units(
            facility.checker_threshold_minor, facility.currency
        ),
        **{
            name: str(getattr(facility, name))
            for name in (
                "advance_rate_bp",
                "annual_rate_bp",
                "day_count",
                "max_tenor_days",
                "min_days_to_due",
                "debtor_cap_bp",
                "late_fee_rate_bp",
                "blacklist_after_days",
            )
        },
        "active": "on",
        "reason": "",
        "_save": "Save",
    }
    return data | changes


def test_a_facility_change_through_the_admin_is_audited_with_its_reason(
    line: Facility, officer: User, sign_in: SignIn
) -> None:
    client = sign_in(officer)
    url = reverse("admin:financing_facility_change", args=[line.pk])
    form = client.get(url).content.decode()
    assert 'name="reason"' in form and 'value="100000.00"' in form

    missing = client.post(url, _facility_form(line, limit_minor="150000.00"))
    assert missing.status_code == 200 and "This field is required." in missing.content.decode()
    unchanged = client.post(url, _facility_form(line, reason="No reason to change anything"))
    assert "No term changed" in unchanged.content.decode()
    assert line.changes.count() == 1  # the opening only

    response = client.post(
        url, _facility_form(line, limit_minor="150000.00", reason="Annual review: turnover up")
    )

    assert response.status_code == 302
    line.refresh_from_db()
    assert (line.limit_minor, line.version) == (15_000_000, 2)
    change = line.changes.order_by("-id").first()
    assert change is not None
    assert (change.officer, change.reason) == (officer, "Annual review: turnover up")
    assert (change.before["limit_minor"], change.after["limit_minor"]) == (10_000_000, 15_000_000)
    assert {k for k in change.after if change.after[k] != change.before[k]} == {"limit_minor"}
    page = client.get(url).content.decode()
    assert "Annual review: turnover up" in page
    assert "100000.00 EUR → 150000.00 EUR" in page


def test_a_facility_limit_cannot_go_below_its_commitments(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    _request(live)  # commits 800.00
    client = sign_in(officer)
    url = reverse("admin:financing_facility_change", args=[line.pk])

    response = client.post(url, _facility_form(line, limit_minor="500.00", reason="Cut"))

    assert response.status_code == 200
    assert "the limit cannot go below that" in response.content.decode()
    line.refresh_from_db()
    assert (line.limit_minor, line.version) == (10_000_000, 1)


def test_a_facility_opens_through_the_admin_with_its_reason(
    make_merchant: Callable[..., Merchant], officer: User, sign_in: SignIn
) -> None:
    merchant = make_merchant()
    client = sign_in(officer)
    data = {
        "merchant": str(merchant.pk),
        "currency": "eur",
        "limit_minor": "25000",
        "checker_threshold_minor": "2500.00",
        "advance_rate_bp": "7500",
        "annual_rate_bp": "1500",
        "day_count": "ACT/360",
        "max_tenor_days": "90",
        "min_days_to_due": "7",
        "debtor_cap_bp": "5000",
        "late_fee_rate_bp": "2400",
        "blacklist_after_days": "30",
        "active": "on",
        "reason": "Onboarding after KYC",
        "_save": "Save",
    }

    response = client.post(reverse("admin:financing_facility_add"), data)

    assert response.status_code == 302, response.content.decode()
    facility = Facility.objects.get(merchant=merchant)
    assert (facility.currency, facility.limit_minor, facility.checker_threshold_minor) == (
        "EUR",
        2_500_000,
        250_000,
    )
    [opening] = FacilityChange.objects.filter(facility=facility)
    assert (opening.officer, opening.reason, opening.before) == (
        officer,
        "Onboarding after KYC",
        {},
    )
    twice = client.post(reverse("admin:financing_facility_add"), data)
    assert twice.status_code == 200  # one active line per currency: a form error, no row
    assert Facility.objects.filter(merchant=merchant).count() == 1


def test_a_facility_change_the_database_refuses_returns_to_the_form(
    line: Facility,
    officer: User,
    senior: User,
    open_facility: Callable[..., Facility],
    sign_in: SignIn,
) -> None:
    facility_change(
        facility=line,
        officer=senior,
        reason="Closed",
        now=timezone.now(),
        changes={"active": False},
    )
    successor = open_facility(line.merchant)
    line.refresh_from_db()
    client = sign_in(officer)
    url = reverse("admin:financing_facility_change", args=[line.pk])

    response = client.post(url, _facility_form(line, reason="Reopen"), follow=True)

    assert response.redirect_chain == [(url, 302)]
    [message] = _messages(response)
    assert "facility_one_active_per_currency" in message
    line.refresh_from_db()
    assert (line.active, line.version) == (False, 2)
    assert Facility.objects.filter(merchant=line.merchant, active=True).get() == successor


# --- blacklist ----------------------------------------------------------------------------------


def test_blacklist_and_lift_through_the_admin(
    verified_merchant: Merchant, officer: User, auditor: User, sign_in: SignIn
) -> None:
    url = reverse("admin:financing_blacklisting_blacklist")
    refused = sign_in(auditor).post(url, {"merchant": verified_merchant.pk, "reason": "I think so"})
    assert "Missing permission financing.manage_blacklist." in refused.content.decode()
    assert not Blacklisting.objects.exists()
    client = sign_in(officer)
    listing = client.get(reverse("admin:financing_blacklisting_changelist")).content.decode()
    assert "Blacklist a merchant" in listing

    response = client.post(
        url, {"merchant": verified_merchant.pk, "reason": "Fraud suspected"}, follow=True
    )

    assert _messages(response) == [f"{verified_merchant.legal_name} is blacklisted."]
    blacklisting = Blacklisting.objects.get()
    assert (blacklisting.created_by, blacklisting.reason) == (officer, "Fraud suspected")
    assert "Lift…" in response.content.decode()
    again = client.post(url, {"merchant": verified_merchant.pk, "reason": "Again"})
    assert "is already blacklisted" in again.content.decode()

    lift = reverse("admin:financing_blacklisting_lift", args=[blacklisting.pk])
    assert "Fraud suspected" in client.get(lift).content.decode()
    blank = client.post(lift, {"reason": ""})
    assert "This field is required." in blank.content.decode()
    lifted = client.post(lift, {"reason": "Cleared by compliance"}, follow=True)

    assert _messages(lifted) == [f"The blacklisting of {verified_merchant.legal_name} is lifted."]
    blacklisting.refresh_from_db()
    assert blacklisting.lifted_by == officer
    assert blacklisting.lift_reason == "Cleared by compliance"
    twice = client.post(lift, {"reason": "Once more"})
    assert "This blacklisting was already lifted." in twice.content.decode()


def test_active_blacklistings_are_listed_first(
    make_merchant: Callable[..., Merchant], officer: User, sign_in: SignIn
) -> None:
    old, newer = make_merchant(legal_name="Old Lifted GmbH"), make_merchant(legal_name="Active AG")
    now = timezone.now()
    lifted = blacklist_add(merchant=old, officer=officer, reason="old", now=now)
    lifted.lifted_at, lifted.lifted_by, lifted.lift_reason = now, officer, "ok"
    lifted.save()
    blacklist_add(merchant=newer, officer=officer, reason="new", now=now - timedelta(days=3))

    page = sign_in(officer).get(reverse("admin:financing_blacklisting_changelist")).content.decode()

    assert page.index("Active AG") < page.index("Old Lifted GmbH")


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
        "1600.00 EUR",  # outstanding: the disbursed advance
        "1",
        "0.00 EUR",
        "2400.00 EUR",  # committed: disbursed and requested
        "100000.00 EUR",
        "2.4 %",
    ]
    [debtor_row] = _rows(page, "debtor-exposure")
    assert debtor_row == [
        "Acme Marketplace",
        "marketplace",
        "EUR",
        "2400.00 EUR",
        "3000.00 EUR",
        "3",
        "1",
    ]


# --- webhook endpoints --------------------------------------------------------------------------


def test_a_webhook_secret_is_shown_once_then_masked(
    marketplace: Marketplace, officer: User, sign_in: SignIn
) -> None:
    client = sign_in(officer)
    data = {"marketplace": marketplace.pk, "url": "https://market.example/notices", "active": "on"}

    response = client.post(reverse("admin:financing_webhookendpoint_add"), data, follow=True)

    endpoint = WebhookEndpoint.objects.get()
    shown = [m for m in _messages(response) if endpoint.secret in m]
    assert shown == [
        f"Give the marketplace this signing secret now; it is not shown again: {endpoint.secret}"
    ]
    change = reverse("admin:financing_webhookendpoint_change", args=[endpoint.pk])
    changelist = reverse("admin:financing_webhookendpoint_changelist")
    for page in (client.get(changelist), client.get(change)):  # the message is spent
        assert endpoint.secret not in page.content.decode()
        assert endpoint.secret[:4] + "•" * 12 in page.content.decode()


# --- the admin's doors ----------------------------------------------------------------------------


def _financing_pages() -> list[str]:
    pages = [
        reverse("admin:app_list", args=["financing"]),
        _url("exposure"),
        reverse("admin:financing_blacklisting_blacklist"),
        reverse("admin:financing_facility_add"),
        reverse("admin:financing_webhookendpoint_add"),
    ]
    for model in (
        "advance",
        "facility",
        "facilitychange",
        "blacklisting",
        "webhookendpoint",
        "assignmentnotice",
        "receivable",
        "assignment",
    ):
        pages.append(reverse(f"admin:financing_{model}_changelist"))
    return pages


def test_every_financing_page_renders_empty_for_a_superuser(staff_client: Client) -> None:
    failures = [
        (page, status)
        for page in _financing_pages()
        if (status := staff_client.get(page).status_code) != 200
    ]
    assert failures == []


def test_a_password_alone_opens_no_financing_view(
    live: Trade, line: Facility, make_staff_user: Callable[..., User]
) -> None:
    advance = _request(live)
    blacklisting = blacklist_add(
        merchant=live.merchant,
        officer=make_staff_user(superuser=True),
        reason="Watch",
        now=timezone.now(),
    )
    client = Client()
    client.force_login(make_staff_user(superuser=True))  # no verified TOTP device
    actions = [_url(verb, advance) for verb in ("approve", "reject", "authorize", "change")]
    lift = reverse("admin:financing_blacklisting_lift", args=[blacklisting.pk])

    for url in [*_financing_pages(), *actions, lift]:
        for response in (client.get(url), client.post(url, {"note": "x", "reason": "x"})):
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("admin:login")), url
    assert Advance.objects.get(pk=advance.pk).status == Advance.Status.REQUESTED
    assert Blacklisting.objects.get().lifted_at is None


# --- read-only for the auditor, everywhere -------------------------------------------------------


def test_every_financing_page_renders_for_the_auditor(
    live: Trade,
    line: Facility,
    officer: User,
    auditor: User,
    marketplace: Marketplace,
    sign_in: SignIn,
) -> None:
    disbursed = _request(live)
    advance_approve(advance=disbursed, officer=officer, now=timezone.now())
    waiting = _request(live)
    blacklisting = blacklist_add(
        merchant=live.merchant, officer=officer, reason="Watch", now=timezone.now()
    )
    WebhookEndpoint.objects.create(marketplace=marketplace, url="https://example.com/hooks")
    client = sign_in(auditor)
    pages = [
        reverse("admin:index"),
        reverse("admin:app_list", args=["financing"]),
        _url("exposure"),
        _url("change", disbursed),
        _url("change", waiting),
        reverse("admin:financing_blacklisting_blacklist"),
        reverse("admin:financing_blacklisting_lift", args=[blacklisting.pk]),
    ]
    for model in (
        "advance",
        "facility",
        "facilitychange",
        "blacklisting",
        "webhookendpoint",
        "assignmentnotice",
        "receivable",
        "assignment",
    ):
        pages.append(reverse(f"admin:financing_{model}_changelist"))
    for model_cls in (
        Facility,
        FacilityChange,
        Blacklisting,
        WebhookEndpoint,
        AssignmentNotice,
        Receivable,
        Assignment,
    ):
        first = model_cls._default_manager.order_by("pk").first()
        assert first is not None, model_cls
        meta = model_cls._meta
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk]))

    failures = [(page, status) for page in pages if (status := client.get(page).status_code) != 200]

    assert failures == []
    assert client.get(reverse("admin:financing_facility_add")).status_code == 403
    index = client.get(reverse("admin:app_list", args=["financing"])).content.decode()
    assert "Exposure by merchant and debtor" in index
    facility_page = client.get(
        reverse("admin:financing_facility_change", args=[line.pk])
    ).content.decode()
    assert "100000.00 EUR" in facility_page and 'name="reason"' not in facility_page
    secret = WebhookEndpoint.objects.get().secret
    assert (
        secret
        not in client.get(reverse("admin:financing_webhookendpoint_changelist")).content.decode()
    )
    listing = client.get(reverse("admin:financing_blacklisting_changelist")).content.decode()
    assert "Lift…" not in listing and "Blacklist a merchant" not in listing
    assert (
        client.post(
            reverse("admin:financing_facility_change", args=[line.pk]), _facility_form(line)
        ).status_code
        == 403
    )
