"""Reconciliation in the officer admin: the break queue, resolving, adjusting four-eyes,
choosing for an ambiguous match, deciding suggested matches, editing rules; the home's ageing
and /metrics. Auditors see everything and act on nothing; anonymous visitors are sent to log in.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from financing.admin.writes import PROPOSED
from financing.models import Break, Facility, Match, MatchRule, RiskChange
from financing.reconciliation.breaks import break_new, break_open
from financing.reconciliation.engine import statement_match
from ledger.models import Payout
from merchants.models import Merchant
from tests.financing.admin.conftest import SignIn, _messages
from tests.financing.conftest import Trade
from tests.financing.reconciliation.statements import Line, statement
from tests.financing.settlement_helpers import balance, disbursed, payout, settle_pending

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

QUEUE = "admin:financing_break_changelist"


def _break(
    kind: str, key: str, days_old: int, amount: int, merchant: Merchant | None = None
) -> Break:
    brk, _ = break_open(
        break_new(
            kind=kind,
            key=key,
            now=timezone.now() - timedelta(days=days_old),
            merchant=merchant,
            currency="EUR",
            amount_minor=amount,
            reference=f"ref {key}",
        )
    )
    return brk


@pytest.fixture
def queue(merchant: Merchant) -> list[Break]:
    return [
        _break(Break.Kind.UNMATCHED_STATEMENT_ENTRY, "entry:1", 0, -1_250),
        _break(Break.Kind.PAYMENT_NOT_ON_STATEMENT, "payment:1", 10, 500_000, merchant),
        _break(Break.Kind.AMBIGUOUS_MATCH, "entry:2", 40, 30_000),
    ]


def _keys(page: str) -> list[str]:
    return re.findall(r"ref (\w+:\d+)", page)


def test_the_queue_filters_by_kind_age_merchant_and_amount(
    queue: list[Break], officer: User, sign_in: SignIn, merchant: Merchant
) -> None:
    client = sign_in(officer)
    url = reverse(QUEUE)
    page = client.get(url).content.decode()
    assert _keys(page) == ["entry:2", "payment:1", "entry:1"]  # oldest first
    assert 'href="/static/' in page or "compact" in page or "nowrap" in page
    assert _keys(client.get(url, {"kind__exact": "ambiguous_match"}).content.decode()) == [
        "entry:2"
    ]
    assert _keys(client.get(url, {"age": "8-30d"}).content.decode()) == ["payment:1"]
    assert _keys(client.get(url, {"age": ">30d"}).content.decode()) == ["entry:2"]
    assert _keys(client.get(url, {"merchant__id__exact": merchant.pk}).content.decode()) == [
        "payment:1"
    ]
    assert _keys(client.get(url, {"size": "<100"}).content.decode()) == ["entry:1"]
    assert _keys(client.get(url, {"size": "1k-10k"}).content.decode()) == ["payment:1"]
    assert "Resolve…" in page


def test_an_officer_resolves_with_a_reason(
    queue: list[Break], officer: User, sign_in: SignIn
) -> None:
    client = sign_in(officer)
    url = reverse("admin:financing_break_resolve", args=[queue[0].pk])
    response = client.post(url, {"reason": "", "debit": "", "credit": "", "amount": ""})
    assert response.status_code == 200 and Break.objects.get(pk=queue[0].pk).status == "open"
    response = client.post(
        url, {"reason": "Bank fee booked by hand", "debit": "", "credit": "", "amount": ""}
    )
    assert response.status_code == 302
    brk = Break.objects.get(pk=queue[0].pk)
    assert (brk.status, brk.resolved_by, brk.resolution) == (
        "resolved",
        officer,
        "Bank fee booked by hand",
    )
    assert "entry:1" not in _keys(client.get(reverse(QUEUE)).content.decode())


def test_an_adjustment_is_proposed_then_confirmed_by_a_senior_officer(
    queue: list[Break], officer: User, senior: User, sign_in: SignIn
) -> None:
    client = sign_in(officer)
    url = reverse("admin:financing_break_resolve", args=[queue[0].pk])
    response = client.post(
        url,
        {
            "reason": "November account fee",
            "debit": "reconciliation_differences",
            "credit": "bank_cash",
            "amount": "12.50",
        },
        follow=True,
    )
    assert PROPOSED in _messages(response)
    change = RiskChange.objects.get(kind=RiskChange.Kind.BREAK_ADJUST)
    assert Break.objects.get(pk=queue[0].pk).status == "open"
    page = client.get(reverse("admin:financing_riskchange_changelist")).content.decode()
    assert "12.50 EUR, Dr reconciliation_differences / Cr bank_cash" in page

    checker = sign_in(senior)
    decide = reverse("admin:financing_riskchange_decide", args=[change.pk])
    checker.post(decide, {"_confirm": "Confirm", "note": ""})
    assert Break.objects.get(pk=queue[0].pk).status == "resolved"
    assert balance("reconciliation_differences") == 1_250 and balance("bank_cash") == -1_250


def test_an_auditor_sees_the_queue_and_acts_on_nothing(
    queue: list[Break], auditor: User, sign_in: SignIn
) -> None:
    client = sign_in(auditor)
    page = client.get(reverse(QUEUE)).content.decode()
    assert _keys(page) == ["entry:2", "payment:1", "entry:1"] and "Resolve…" not in page
    url = reverse("admin:financing_break_resolve", args=[queue[0].pk])
    assert "You do not hold the permission to resolve breaks." in client.get(url).content.decode()
    response = client.post(url, {"reason": "fine", "debit": "", "credit": "", "amount": ""})
    assert "Missing permission financing.change_break" in response.content.decode()
    assert Break.objects.get(pk=queue[0].pk).status == "open"
    assert client.get(reverse("admin:financing_matchrule_change", args=[1])).status_code in (
        200,
        403,
    )
    rule = MatchRule.objects.get(order=10)
    client.post(
        reverse("admin:financing_matchrule_change", args=[rule.pk]),
        {
            "order": 10,
            "name": "Hacked",
            "kind": "one_to_one",
            "source": "debit_payments",
            "keys": ["currency"],
            "tolerance_minor": 0,
            "tolerance_bps": 0,
            "days_before": 0,
            "days_after": 0,
        },
    )
    assert MatchRule.objects.get(pk=rule.pk).name == "Debit by end-to-end id"


def test_anonymous_visitors_are_sent_to_log_in(queue: list[Break]) -> None:
    client = Client()
    for url in [
        reverse(QUEUE),
        reverse("admin:financing_break_resolve", args=[queue[0].pk]),
        reverse("admin:financing_match_changelist"),
        reverse("admin:financing_matchrule_changelist"),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_a_senior_officer_edits_a_rule_an_officer_cannot(
    officer: User, senior: User, sign_in: SignIn
) -> None:
    rule = MatchRule.objects.get(order=60)
    url = reverse("admin:financing_matchrule_change", args=[rule.pk])
    form = {
        "order": 60,
        "name": rule.name,
        "kind": rule.kind,
        "source": rule.source,
        "keys": ["reference", "currency"],
        "tolerance_minor": 250,
        "tolerance_bps": 0,
        "days_before": 0,
        "days_after": 5,
        "auto_confirm": "on",
        "active": "on",
        "description": rule.description,
    }
    assert sign_in(officer).post(url, form).status_code == 403
    assert MatchRule.objects.get(pk=rule.pk).tolerance_minor == 100
    senior_client = sign_in(senior)
    assert senior_client.post(url, form).status_code == 302
    assert MatchRule.objects.get(pk=rule.pk).tolerance_minor == 250
    # A one-to-many rule naming nothing is refused, with the service's sentence.
    response = senior_client.post(url, {**form, "keys": ["currency"]}, follow=True)
    assert any("needs a key naming the items" in m for m in _messages(response))
    assert MatchRule.objects.get(pk=rule.pk).keys == ["reference", "currency"]
    page = senior_client.get(reverse("admin:financing_matchrule_changelist")).content.decode()
    assert page.index("Debit by end-to-end id") < page.index("Credit by amount and date")


def _financed_payout(live: Trade, officer: User, amount: str) -> Payout:
    [ref] = live.fundable(1, amount=amount)
    disbursed(live, [ref], officer, timezone.now())
    ref = payout(live, [(ref, amount)])
    settle_pending(timezone.now())
    return Payout.objects.get(ref=ref)


def test_an_officer_confirms_a_suggested_match_and_chooses_for_an_ambiguous_one(
    live: Trade, line: Facility, officer: User, auditor: User, sign_in: SignIn
) -> None:
    short = _financed_payout(live, officer, "500.00")
    first = _financed_payout(live, officer, "300.00")
    second = _financed_payout(live, officer, "300.00")
    on = date(2026, 11, 2)
    statement(
        [
            Line("credit", 49_970, on, references=[short.ref]),
            Line("credit", 30_000, on, references=["transfer"]),
        ],
        timezone.now(),
    )
    Payout.objects.update(settled_on=on)
    statement_match(now=timezone.now())
    match = Match.objects.get()
    assert match.status == "suggested"

    watcher = sign_in(auditor)
    assert (
        "Decide…" not in watcher.get(reverse("admin:financing_match_changelist")).content.decode()
    )
    watcher.post(reverse("admin:financing_match_decide", args=[match.pk]), {"_confirm": "1"})
    assert Match.objects.get(pk=match.pk).status == "suggested"

    client = sign_in(officer)
    page = client.get(reverse("admin:financing_match_changelist")).content.decode()
    assert "Decide…" in page and f"payout {short.ref}" in page
    client.post(reverse("admin:financing_match_decide", args=[match.pk]), {"_confirm": "1"})
    assert Match.objects.get(pk=match.pk).status == "confirmed"

    brk = Break.objects.get(kind=Break.Kind.AMBIGUOUS_MATCH)
    url = reverse("admin:financing_break_resolve", args=[brk.pk])
    page = client.get(url).content.decode()
    assert f"payout {first.ref}" in page and f"payout {second.ref}" in page
    client.post(
        url,
        {
            "choose": "1",
            "reason": "Remittance advice names the second",
            "debit": "",
            "credit": "",
            "amount": "",
        },
    )
    brk.refresh_from_db()
    assert brk.status == "resolved" and second.ref in str(
        Match.objects.get(items__payout=second).items.all()[1].payout.ref
    )
    assert balance("bank_cash") == 49_970 + 30_000


def test_the_home_shows_open_breaks_by_age_and_metrics_by_kind(
    queue: list[Break], officer: User, sign_in: SignIn, client: Client
) -> None:
    page = sign_in(officer).get(reverse("admin:index")).content.decode()
    section = re.search(r'id="home-breaks">(.*?)</div>', page, re.S)
    assert section is not None
    text = section.group(1)
    assert "0-1d: 1 open" in text and "8-30d: 1 open" in text and "&gt;30d: 1 open" in text
    metrics = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert 'chainfin_reconciliation_breaks_open{kind="ambiguous_match"} 1.0' in metrics
    assert 'chainfin_reconciliation_breaks_open{kind="diverted_payment"} 0.0' in metrics
