"""Settlement in the officer admin (issue 9, item 6): suspense allocated four-eyes, recourse,
each advance's repayment history, dead letters re-run, the work outbox and the home's sections.

Each invoice has a face of 1,000.00; the line advances 80 % (800.00, reserve 200.00).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import financing.services.dead_letters
from financing.admin.home import officer_home
from financing.admin.writes import PROPOSED
from financing.models import (
    Advance,
    DeadLetter,
    Facility,
    RiskChange,
    SettlementWork,
    SuspenseItem,
)
from financing.services.settlement import settlement_work_dead_letter
from tests.financing.admin.conftest import SignIn, _messages, _rows, _url
from tests.financing.conftest import Trade
from tests.financing.settlement_helpers import assignment, disbursed, payout, settle_pending

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TASK = "financing.tasks.settlement_run"


def _section(page: str, key: str) -> str:
    match = re.search(rf'id="home-{key}">(.*?)</div>', page, re.S)
    assert match is not None, f"no section {key}"
    return match.group(1)


def held(live: Trade, officer: User) -> tuple[str, SuspenseItem]:
    """A financed invoice, and a payout of 1,000.00 whose line misnames it: held in suspense."""
    [ref] = live.fundable(1)
    disbursed(live, [ref], officer, timezone.now())
    payout(live, [(f"TYPO-{ref}", "1000.00")], ref=f"PO-{ref}")
    settle_pending(timezone.now())
    return ref, SuspenseItem.objects.get()


class SentTasks:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_task(self, name: str, kwargs: dict[str, Any]) -> None:
        self.sent.append((name, kwargs))


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    sent = SentTasks()
    monkeypatch.setattr(financing.services.dead_letters, "current_app", sent)
    return sent


# --- suspense ------------------------------------------------------------------------------------


def test_an_officer_proposes_an_allocation_a_different_senior_confirms_it(
    live: Trade,
    line: Facility,
    officer: User,
    senior: User,
    sign_in: SignIn,
) -> None:
    ref, item = held(live, officer)
    client = sign_in(officer)

    listing = client.get(reverse("admin:financing_suspenseitem_changelist")).content.decode()
    assert item.ref in listing and "1,000.00 EUR" in listing
    assert live.merchant.legal_name in listing and f"PO-{ref} (line 0)" in listing
    assert f"TYPO-{ref}" in listing and "Allocate…" in listing
    allocate = reverse("admin:financing_suspenseitem_allocate", args=[item.pk])
    assert "unknown in EUR for this merchant" in client.get(allocate).content.decode()
    wrong = client.post(allocate, {"target": "NOPE", "reason": "Remittance advice"})
    assert "is not one of" in wrong.content.decode()

    proposed = client.post(allocate, {"target": ref, "reason": "Remittance advice"}, follow=True)

    assert _messages(proposed) == [PROPOSED]
    assert SuspenseItem.objects.get().status == SuspenseItem.Status.OPEN
    change = RiskChange.objects.get(kind=RiskChange.Kind.SUSPENSE_ALLOCATE)
    assert f"invoice {ref}" in proposed.content.decode()  # the pending list shows what moves
    decide = reverse("admin:financing_riskchange_decide", args=[change.pk])
    own = client.post(decide, {"_confirm": "Confirm"})  # a plain officer, and the proposer
    assert "Missing permission financing.confirm_riskchange." in own.content.decode()
    page = sign_in(senior).get(decide).content.decode()
    assert "1,000.00 EUR of " in page and item.ref in page

    confirmed = sign_in(senior).post(decide, {"_confirm": "Confirm"}, follow=True)

    assert _messages(confirmed) == ["The change is confirmed and applied."]
    item.refresh_from_db()
    assert (item.status, item.allocated_to) == (SuspenseItem.Status.ALLOCATED, ref)
    assert assignment(ref).status == "settled"
    after = client.get(reverse("admin:financing_suspenseitem_changelist")).content.decode()
    assert item.ref not in after  # open items only, by default
    everything = client.get(reverse("admin:financing_suspenseitem_changelist"), {"state": "all"})
    assert item.ref in everything.content.decode()


def test_the_auditor_sees_suspense_but_allocates_nothing(
    live: Trade, line: Facility, officer: User, auditor: User, sign_in: SignIn
) -> None:
    ref, item = held(live, officer)
    client = sign_in(auditor)
    allocate = reverse("admin:financing_suspenseitem_allocate", args=[item.pk])

    listing = client.get(reverse("admin:financing_suspenseitem_changelist")).content.decode()
    assert item.ref in listing and "Allocate…" not in listing
    page = client.get(allocate).content.decode()
    assert "You do not hold the permission to allocate suspense." in page
    refused = client.post(allocate, {"target": ref, "reason": "I think so"})

    assert "Missing permission financing.change_suspenseitem." in refused.content.decode()
    assert not RiskChange.objects.filter(kind=RiskChange.Kind.SUSPENSE_ALLOCATE).exists()
    view = client.get(reverse("admin:financing_suspenseitem_change", args=[item.pk]))
    assert view.status_code == 200
    assert "suspense" not in {s.key for s in officer_home(user=auditor, now=timezone.now())}


# --- repayment, recourse -------------------------------------------------------------------------


def test_the_advance_page_shows_its_repayment_and_the_merchant_file_its_recourse(
    live: Trade, line: Facility, officer: User, auditor: User, sign_in: SignIn
) -> None:
    now = timezone.now()
    diluted, paid = live.fundable(2)
    first = disbursed(live, [diluted], officer, now)
    second = disbursed(live, [paid], officer, now)
    live.credited(diluted, "150.00")  # 150.00 of recourse after funding
    settle_pending(now)
    payout(live, [(paid, "600.00")], ref="PO-A")
    payout(live, [(paid, "400.00")], ref="PO-B")
    settle_pending(now)
    client = sign_in(auditor)

    page = client.get(_url("change", second)).content.decode()

    lines = _rows(page, "repayment-line")
    assert [row[1:] for row in lines] == [
        ["PO-A", "0", paid, *_eur("600.00", "0.00", "600.00", "0.00", "0.00", "0.00")],
        ["PO-B", "0", paid, *_eur("400.00", "0.00", "200.00", "200.00", "150.00", "0.00")],
    ]
    assert "principal 800.00 EUR repaid" in page
    # The line's own 200.00 paid 150.00 of recourse; closing releases no reserve left over.
    assert _rows(page, "reserve-release") == []
    assert "the merchant owes 0.00 EUR on recourse" in page  # the line's release paid it
    assert Advance.objects.get(pk=second.pk).status == Advance.Status.REPAID
    unpaid = client.get(_url("change", first)).content.decode()
    assert "No payout has reached its receivables yet." in unpaid

    credit_file = client.get(
        reverse("admin:financing_merchantfile_change", args=[live.merchant.pk])
    ).content.decode()
    assert _rows(credit_file, "recourse-row") == [["EUR", "150.00 EUR", "0.00 EUR"]]
    recourse = client.get(reverse("admin:financing_recourse_changelist")).content.decode()
    assert diluted in recourse and first.ref in recourse and "150.00 EUR" in recourse
    assert "Credit note after funding" in recourse


def test_a_release_netted_against_recourse_shows_on_the_advance(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    now = timezone.now()
    [ref] = live.fundable(1)
    advance = disbursed(live, [ref], officer, now)
    live.credited(ref, "100.00")
    settle_pending(now)
    payout(live, [(ref, "900.00")], ref="PO-C")
    settle_pending(now)

    page = sign_in(officer).get(_url("change", advance)).content.decode()

    [line_row] = _rows(page, "repayment-line")
    # 800.00 principal; the 100.00 left to the merchant all kept back against the recourse.
    assert line_row[1:] == [
        "PO-C",
        "0",
        ref,
        *_eur("900.00", "0.00", "800.00", "100.00", "100.00", "0.00"),
    ]
    [release] = _rows(page, "reserve-release")
    assert release[1:] == [ref, "100.00 EUR", "0.00 EUR"]


def test_recourse_still_owed_shows_on_the_advance_page(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    now = timezone.now()
    [ref] = live.fundable(1)
    advance = disbursed(live, [ref], officer, now)
    live.returned(ref.replace("INV", "ORD"))  # the goods came back: the face becomes recourse
    settle_pending(now)

    page = sign_in(officer).get(_url("change", advance)).content.decode()

    assert "the merchant owes 800.00 EUR on recourse" in page  # 1,000.00 less its 200.00 reserve


def _eur(*amounts: str) -> list[str]:
    return [f"{amount} EUR" for amount in amounts]


# --- dead letters and the outbox -----------------------------------------------------------------


def dead(live: Trade, officer: User) -> DeadLetter:
    [ref] = live.fundable(1)
    disbursed(live, [ref], officer, timezone.now())
    payout(live, [(ref, "1000.00")])
    work = SettlementWork.objects.get(status=SettlementWork.Status.PENDING)
    return settlement_work_dead_letter(
        work_id=work.pk,
        task_name=TASK,
        error="Failed: KeyError('x')",
        attempts=6,
        now=timezone.now(),
    )


def test_an_officer_reruns_a_dead_letter_the_auditor_cannot(
    live: Trade,
    line: Facility,
    officer: User,
    auditor: User,
    sign_in: SignIn,
    broker: SentTasks,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    letter = dead(live, officer)
    changelist = reverse("admin:financing_deadletter_changelist")
    action = {"action": "rerun_action", "_selected_action": [letter.pk]}

    watcher = sign_in(auditor)
    listing = watcher.get(changelist).content.decode()
    assert "KeyError" in listing and "Re-run the selected tasks" not in listing
    with django_capture_on_commit_callbacks(execute=True):
        watcher.post(changelist, action, follow=True)
    assert DeadLetter.objects.get().rerun_at is None and broker.sent == []

    client = sign_in(officer)
    assert "Re-run the selected tasks" in client.get(changelist).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(changelist, action, follow=True)

    assert _messages(done) == ["1 task(s) sent again."]
    letter.refresh_from_db()
    assert letter.rerun_by == officer
    assert SettlementWork.objects.get().status == SettlementWork.Status.PENDING
    assert broker.sent == [(TASK, {"work_id": letter.work_id})]
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(changelist, action, follow=True)
    assert any("re-run already" in m for m in _messages(again))
    assert len(broker.sent) == 1


def test_the_outbox_lists_work_with_its_lag(
    live: Trade, line: Facility, officer: User, auditor: User, sign_in: SignIn
) -> None:
    [ref] = live.fundable(1)
    disbursed(live, [ref], officer, timezone.now())
    payout(live, [(ref, "1000.00")], ref="PO-LAG")
    work = SettlementWork.objects.get()
    settle_pending(work.entry.recorded_at + timedelta(seconds=4))

    page = sign_in(auditor).get(reverse("admin:financing_settlementwork_changelist"))

    text = page.content.decode()
    assert "payout.settled PO-LAG" in text and ">4 s<" in text


# --- who gets in ---------------------------------------------------------------------------------


def test_the_settlement_pages_need_a_signed_in_officer(
    live: Trade, line: Facility, officer: User, broker: SentTasks
) -> None:
    letter = dead(live, officer)
    pages = [
        reverse("admin:financing_suspenseitem_changelist"),
        reverse("admin:financing_recourse_changelist"),
        reverse("admin:financing_deadletter_changelist"),
        reverse("admin:financing_settlementwork_changelist"),
        reverse("admin:financing_deadletter_change", args=[letter.pk]),
        reverse("admin:financing_suspenseitem_allocate", args=[1]),
    ]
    client = Client()
    for url in pages:
        for response in (
            client.get(url),
            client.post(url, {"action": "rerun_action", "_selected_action": [letter.pk]}),
        ):
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("admin:login")), url
    assert DeadLetter.objects.get().rerun_at is None and broker.sent == []


def test_every_settlement_page_renders_for_the_auditor(
    live: Trade, line: Facility, officer: User, auditor: User, sign_in: SignIn
) -> None:
    _, item = held(live, officer)
    letter = dead(live, officer)
    client = sign_in(auditor)
    pages = [
        reverse("admin:financing_suspenseitem_change", args=[item.pk]),
        reverse("admin:financing_deadletter_change", args=[letter.pk]),
        reverse("admin:financing_settlementwork_change", args=[letter.work_id]),
        reverse("admin:financing_recourse_changelist"),
    ]
    assert [(p, s) for p in pages if (s := client.get(p).status_code) != 200] == []
    for model in ("suspenseitem", "recourse", "deadletter", "settlementwork"):
        assert client.get(reverse(f"admin:financing_{model}_add")).status_code == 403


# --- the officer's home --------------------------------------------------------------------------


def test_the_home_shows_suspense_dead_letters_and_settlement_lag(
    live: Trade, line: Facility, officer: User, sign_in: SignIn
) -> None:
    _, item = held(live, officer)
    dead(live, officer)
    client = sign_in(officer)
    page = client.get(reverse("admin:index")).content.decode()

    suspense = _section(page, "suspense")
    assert live.merchant.legal_name in suspense and "1,000.00 EUR" in suspense
    assert reverse("admin:financing_suspenseitem_allocate", args=[item.pk]) in suspense
    assert "KeyError" in _section(page, "dead-letters")
    # Each section links to the full list, filtered as the section is.
    sections = {s.key: s for s in officer_home(user=officer, now=timezone.now())}
    assert item.ref in client.get(sections["suspense"].more_url).content.decode()
    assert "KeyError" in client.get(sections["dead-letters"].more_url).content.decode()
    for work_list in sections["settlement-lag"].items:
        assert client.get(work_list.url).status_code == 200
    lag = _section(page, "settlement-lag")
    assert "0 pending" in lag and "1 payout(s) in 24 h" in lag  # the dead one waits no more


def test_settlement_lag_counts_pending_work_and_the_median_of_the_last_day(
    live: Trade, line: Facility, officer: User
) -> None:
    refs = live.fundable(4)
    disbursed(live, refs, officer, timezone.now())
    for ref in refs:
        payout(live, [(ref, "100.00")])
    works = list(SettlementWork.objects.order_by("pk").select_related("entry"))
    recorded = works[0].entry.recorded_at
    for work, seconds in zip(works[:3], (2, 10, 4), strict=True):
        SettlementWork.objects.filter(pk=work.pk).update(
            status="done", done_at=work.entry.recorded_at + timedelta(seconds=seconds)
        )
    SettlementWork.objects.filter(pk=works[3].pk).update(created_at=recorded)
    at = recorded + timedelta(minutes=5)

    section = {s.key: s for s in officer_home(user=officer, now=at)}["settlement-lag"]

    pending, median = section.items
    assert (pending.label, pending.tone) == ("1 pending", "bad")
    assert pending.detail == "oldest 5 min 0 s ago"
    assert median.label == "Median lag 4 s"
    later = {s.key: s for s in officer_home(user=officer, now=at + timedelta(days=2))}
    assert later["settlement-lag"].items[1].label == "Median lag —"  # none in the last 24 h
