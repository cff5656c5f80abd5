"""The officer's screens (issue 8, item 14): the home, the lists with money, the merchant file.

Pages are fetched through the real admin login (password and TOTP) by the test client, which
re-raises anything a view lets escape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import financing.tasks
from financing.admin.home import officer_home
from financing.books.models import Account, BooksVerification
from financing.models import Advance, AssignmentNotice, Facility, RiskChange
from financing.notices import notice_give_up
from financing.services.decisions import advance_approve
from financing.services.facilities import facility_change_propose
from ledger.models import Entry, LedgerVerification
from tests.financing.admin.conftest import SignIn, _cells, _request, _url
from tests.financing.conftest import NoticeTaskRecorder, Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _section(page: str, key: str) -> str:
    match = re.search(rf'id="home-{key}">(.*?)</div>', page, re.S)
    assert match is not None, f"no section {key}"
    return match.group(1)


def test_the_home_lists_what_awaits_each_officer(
    live: Trade,
    line: Facility,
    officer: User,
    senior: User,
    senior_two: User,
    auditor: User,
    sign_in: SignIn,
    notices_enqueued: NoticeTaskRecorder,
) -> None:
    now = timezone.now()
    # First, while the merchant's 24 hours are still under the checker threshold: it disburses.
    late = _request(live)
    advance_approve(advance=late, officer=officer, now=now)
    Advance.objects.filter(pk=late.pk).update(status=Advance.Status.OVERDUE)
    waiting = _request(live, amount="1000.00")
    big = _request(live, n=8, amount="1000.00")  # 6,400.00 advanced: above the threshold
    advance_approve(advance=big, officer=senior, now=now)  # approved by senior: awaits another
    notice = AssignmentNotice.objects.get(advance=late)
    notice_give_up(notice_id=notice.pk, error="Gave up after retries: HTTP 503", now=now)
    LedgerVerification.objects.create(
        started_at=now - timedelta(hours=3),
        finished_at=now,
        outcome=LedgerVerification.Outcome.INTACT,
        chains_checked=1,
        entries_checked=1234,
    )

    page = sign_in(senior_two).get(reverse("admin:index")).content.decode()

    assert waiting.ref in _section(page, "to-approve")
    assert big.ref not in _section(page, "to-approve")
    assert big.ref in _section(page, "to-authorize")
    assert "6,400.00 EUR" in _section(page, "to-authorize")
    assert late.ref in _section(page, "overdue")
    assert "HTTP 503" in _section(page, "failed-notices")
    verifications = _section(page, "verifications")
    assert "Ledger: Intact" in verifications and "1,234 entries" in verifications
    assert "Books" not in verifications  # never run yet

    # the approver is not asked to authorize his own approval; the auditor decides nothing
    mine = {s.key: s for s in officer_home(user=senior, now=now)}
    assert [i.label for i in mine["to-authorize"].items] == []
    audit = {s.key for s in officer_home(user=auditor, now=now)}
    assert audit == {
        "overdue",
        "failed-notices",
        "breaks",
        "dead-letters",
        "settlement-lag",
        "early-warnings",
        "verifications",
    }


def test_the_home_has_one_section_per_builder_in_order() -> None:
    from financing.admin import home

    keys = [b.__name__ for b in home.SECTIONS]
    assert keys == [
        "to_approve",
        "to_authorize",
        "to_confirm",
        "overdue",
        "failed_notices",
        "suspense_to_allocate",
        "breaks_ageing",
        "dead_letters",
        "settlement_behind",
        "early_warnings",
        "verifications",
    ]


def test_the_home_lists_proposals_to_confirm_for_other_senior_officers(
    line: Facility, officer: User, senior: User, senior_two: User, sign_in: SignIn
) -> None:
    now = timezone.now()
    rate = facility_change_propose(
        facility=line,
        officer=officer,
        reason="Rate review",
        now=now,
        changes={"annual_rate_bp": 1700},
    )

    page = sign_in(senior_two).get(reverse("admin:index")).content.decode()
    waiting = _section(page, "to-confirm")
    assert "Rate review" in waiting and "proposed by " + officer.get_username() in waiting
    assert reverse("admin:financing_riskchange_decide", args=[rate.pk]) in waiting

    # A senior's own proposal waits for another senior; a plain officer confirms nothing.
    RiskChange.objects.filter(pk=rate.pk).update(proposed_by=senior)
    own = {s.key: s for s in officer_home(user=senior, now=now)}
    assert own["to-confirm"].items == ()
    assert "to-confirm" not in {s.key for s in officer_home(user=officer, now=now)}


def test_only_verified_staff_reach_the_home(
    make_staff_user: Callable[..., User], django_user_model: type[User]
) -> None:
    index = reverse("admin:index")
    customer = django_user_model.objects.create_user(username="customer", password="x")
    for user in (customer, make_staff_user(superuser=True)):  # no staff flag; no second factor
        client = Client()
        client.force_login(user)
        response = client.get(index)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_books_verification_is_recorded_and_shown(
    senior: User, sign_in: SignIn, now: object
) -> None:
    run_id = financing.tasks.books_verify_run()
    run = BooksVerification.objects.get(pk=run_id)
    assert run.outcome == BooksVerification.Outcome.BALANCED
    assert run.finished_at is not None
    Account.objects.create(
        code="bank_cash:EUR", name="Cash", kind="asset", currency="EUR", balance_minor=5
    )

    broken = BooksVerification.objects.get(pk=financing.tasks.books_verify_run())

    assert broken.outcome == BooksVerification.Outcome.BROKEN
    assert "bank_cash:EUR" in broken.problem
    client = sign_in(senior)
    home = client.get(reverse("admin:index")).content.decode()
    assert "Books: Broken" in _section(home, "verifications")
    listing = client.get(reverse("admin:books_booksverification_changelist")).content.decode()
    assert "balance differs from the sum of its postings" in listing


def test_both_verifications_run_from_beat_at_crontab_times() -> None:
    schedule = settings.CELERY_BEAT_SCHEDULE
    tasks = {entry["task"]: entry["schedule"] for entry in schedule.values()}
    assert isinstance(tasks["ledger.tasks.ledger_verify"], crontab)
    assert isinstance(tasks["financing.tasks.books_verify_run"], crontab)
    assert isinstance(tasks["financing.tasks.notice_sweep_run"], crontab)
    # No 24-hour intervals that a restarted beat would start anew; only the settlement sweep
    # and the log's sequencer run every few seconds, which no crontab can say.
    intervals = {task: s for task, s in tasks.items() if not isinstance(s, crontab)}
    assert set(intervals) == {"financing.tasks.settlement_sweep_run", "ledger.tasks.log_sequence"}
    assert all(float(s) <= 60 for s in intervals.values())


def test_ledger_lists_show_amounts_as_money(live: Trade, auditor: User, sign_in: SignIn) -> None:
    live.order("ORD-BIG", amount="1234567.89")
    live.invoice("INV-BIG", "ORD-BIG", amount="1234567.89")
    client = sign_in(auditor)

    for model in ("order", "invoice"):
        page = client.get(reverse(f"admin:ledger_{model}_changelist")).content.decode()
        assert "1,234,567.89 EUR" in page, model
        assert "123456789" not in page, model


def test_the_receivables_list_shows_amount_due_date_verdict_and_status(
    live: Trade, line: Facility, auditor: User, sign_in: SignIn
) -> None:
    held = _request(live, amount="2500.00")
    [free] = live.fundable(1, amount="1500.00", due_in_days=30)
    live.order("ORD-NODELIVERY", amount="900.00")
    live.invoice("INV-NODELIVERY", "ORD-NODELIVERY", amount="900.00")

    page = sign_in(auditor).get(reverse("admin:financing_receivable_changelist")).content.decode()

    held_ref = held.assignments.get().invoice_ref
    rows = {
        ref: " | ".join(_cells(row.replace("<th", "<td").replace("</th>", "</td>")))
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S)
        for ref in (free, held_ref, "INV-NODELIVERY")
        if f">{ref}<" in row
    }
    due = (timezone.now().date() + timedelta(days=30)).isoformat()
    assert "1,500.00 EUR" in rows[free] and due in rows[free] and "fundable" in rows[free]
    assert "free" in rows[free]
    assert "2,500.00 EUR" in rows[held_ref]
    assert f"held by a request ({held.ref})" in rows[held_ref]
    assert "NO_DELIVERY" in rows["INV-NODELIVERY"] and "900.00 EUR" in rows["INV-NODELIVERY"]


def test_the_merchant_file_shows_facility_exposure_advances_risk_and_chain(
    live: Trade, line: Facility, officer: User, auditor: User, sign_in: SignIn
) -> None:
    disbursed = _request(live, n=2, amount="1000.00")
    advance_approve(advance=disbursed, officer=officer, now=timezone.now())
    client = sign_in(auditor)
    url = reverse("admin:financing_merchantfile_change", args=[live.merchant.pk])

    page = client.get(url).content.decode()

    assert 'id="facility"' in page and "100,000.00 EUR" in page  # the limit
    assert 'id="exposure"' in page and "1,600.00 EUR" in page  # outstanding
    assert disbursed.ref in page and "2,000.00 EUR" in page
    assert 'id="risk"' in page and f"{disbursed.risk_score} (" in page
    on_chain = Entry.objects.filter(chain__merchant=live.merchant).count()
    assert page.count('class="chain-entry"') == min(on_chain, 15) > 10
    assert "advance.disbursed" in page and "receivable.assigned" in page
    review = client.get(_url("change", disbursed)).content.decode()
    assert url in review  # the review page links the merchant's file
