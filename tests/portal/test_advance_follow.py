"""Following an advance in the portal: the list, its stages, the waterfall of each payout that
repaid it, the bank's note for the merchant (never the internal one); withdrawing it and
answering a new price."""

# Fixtures imported from the helpers are arguments, not redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from financing.models import Advance, Facility
from financing.services.quotes import advance_requote_send
from tests.conftest import NOW
from tests.financing.conftest import Trade
from tests.financing.settlement_helpers import payout, settle_pending
from tests.portal.advance_helpers import (  # noqa: F401  (fixtures)
    frozen_now,
    member_of_a,
    owner,
    page,
    requested,
    viewer,
)
from tests.portal.conftest import Scenario

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]


def _requote(advance: Advance) -> Advance:
    """Raise the rate behind ``advance``: it waits for the merchant to accept the new price."""
    Facility.objects.filter(pk=advance.facility_id).update(annual_rate_bp=2400)
    assert advance_requote_send(advance=advance, now=NOW, reason="Rate review")
    return Advance.objects.get(pk=advance.pk)


def test_the_list_shows_each_advance_in_words(scenario: Scenario, owner: Client) -> None:
    body = page(owner.get(reverse("portal:advances")))

    assert reverse("portal:advance", args=[scenario.advance.ref]) in body
    assert "Paid out: being repaid" in body
    assert "1,584" in body  # paid out: 1,600.00 advanced less the fee
    assert reverse("portal:advance_new") in body


def test_an_advance_shows_its_stages_and_the_waterfall_of_each_payout(
    scenario: Scenario, owner: Client
) -> None:
    body = page(owner.get(reverse("portal:advance", args=[scenario.advance.ref])))

    for stage in ("You requested it", "Approved by the bank", "Paid out to you"):
        assert stage in body
    assert "Being repaid as your buyers pay" in body
    # The buyer paid the first invoice in full: 800.00 repaid the advance, and the other
    # 200.00 (its reserve) went on to the merchant in the same line.
    assert "How your buyers' payments repaid it" in body
    [line] = re.findall(r'<tr class="waterfall-line">(.*?)</tr>', body, re.S)
    cells = re.findall(r'class="num">([^<]*)</td>', line)
    assert cells == ["1,000.00 EUR", "0.00 EUR", "800.00 EUR", "0.00 EUR", "200.00 EUR", "0.00 EUR"]
    assert scenario.financed[0] in body and scenario.financed[1] in body
    assert _figure(body, "repaid") == "800.00 EUR"
    assert _figure(body, "paid-on") == "200.00 EUR"  # that reserve, reaching the merchant


def _figure(body: str, name: str) -> str:
    [value] = re.findall(rf'data-figure="{name}">([^<]*)<', body)
    return value


def test_a_reserve_released_shows_what_was_kept_for_recourse(
    scenario: Scenario, owner: Client, trade: Trade
) -> None:
    # A credit note of 300.00 after funding, then the buyer pays the 700.00 left: the advance
    # is short 100.00 (recourse), so the 200.00 reserve released is kept back for it.
    trade.credited(scenario.financed[1], "300.00")
    payout(trade, [(scenario.financed[1], "700.00")])
    settle_pending(NOW)

    body = page(owner.get(reverse("portal:advance", args=[scenario.advance.ref])))

    assert body.count('class="waterfall-line"') == 2
    [release] = re.findall(r'<tr class="reserve-release">(.*?)</tr>', body, re.S)
    assert scenario.financed[1] in release
    cells = re.findall(r'class="num">([^<]*)</td>', release)
    assert cells == ["200.00 EUR", "200.00 EUR", "0.00 EUR"]
    assert _figure(body, "paid-on") == "200.00 EUR"  # the first invoice's; this one's was kept


def test_only_the_note_meant_for_the_merchant_is_shown(scenario: Scenario, owner: Client) -> None:
    Advance.objects.filter(pk=scenario.advance.pk).update(
        decision_note="Internal: thin file, watch the debtor.",
        merchant_note="Welcome aboard: paid out today.",
    )

    body = page(owner.get(reverse("portal:advance", args=[scenario.advance.ref])))

    assert "A note from the bank" in body and "Welcome aboard: paid out today." in body
    assert "thin file" not in body


def test_the_internal_notes_of_a_requote_and_a_withdrawal_never_show(
    scenario: Scenario, owner: Client
) -> None:
    advance = _requote(requested(owner, scenario.eligible[:1]))
    assert "Rate review" in advance.decision_note

    body = page(owner.get(reverse("portal:advance", args=[advance.ref])))

    assert "Rate review" not in body and "A note from the bank" not in body
    owner.post(reverse("portal:advance_withdraw", args=[advance.ref]), {"reason": "Too dear"})
    after = page(owner.get(reverse("portal:advance", args=[advance.ref])))
    assert "Withdrawn by the merchant" not in after


def test_withdrawing_before_approval_frees_the_invoices(scenario: Scenario, owner: Client) -> None:
    advance = requested(owner, scenario.eligible[:1])
    assert "Withdraw the request" in page(owner.get(reverse("portal:advance", args=[advance.ref])))

    response = owner.post(reverse("portal:advance_withdraw", args=[advance.ref]), {"reason": ""})

    assert response.status_code == 302
    advance.refresh_from_db()
    assert advance.status == Advance.Status.WITHDRAWN
    withdrawn = page(owner.get(response["Location"]))
    assert "You withdrew it" in withdrawn and "Would have been paid to you" in withdrawn
    assert "In plain words" not in withdrawn and "Withdraw the request" not in withdrawn
    assert f'value="{scenario.eligible[0]}"' in page(owner.get(reverse("portal:advance_new")))


def test_an_advance_paid_out_cannot_be_withdrawn(scenario: Scenario, owner: Client) -> None:
    response = owner.post(reverse("portal:advance_withdraw", args=[scenario.advance.ref]))

    assert response.status_code == 409
    assert "Only a request the bank has not approved or decided on can be withdrawn." in page(
        response
    )
    scenario.advance.refresh_from_db()
    assert scenario.advance.status == Advance.Status.DISBURSED


def test_a_withdrawal_reason_too_long_is_a_400(scenario: Scenario, owner: Client) -> None:
    advance = requested(owner, scenario.eligible[:1])

    response = owner.post(
        reverse("portal:advance_withdraw", args=[advance.ref]), {"reason": "x" * 501}
    )

    assert response.status_code == 400
    assert "at most 500 characters" in page(response)
    advance.refresh_from_db()
    assert advance.status == Advance.Status.REQUESTED


def test_a_new_price_is_accepted_by_its_hash(scenario: Scenario, owner: Client) -> None:
    advance = _requote(requested(owner, scenario.eligible[:1]))
    body = page(owner.get(reverse("portal:advance", args=[advance.ref])))
    assert "The bank offers a new price" in body
    assert f'name="terms_hash" value="{advance.price_hash}"' in body

    response = owner.post(
        reverse("portal:advance_accept", args=[advance.ref]), {"terms_hash": advance.price_hash}
    )

    assert response.status_code == 302
    advance.refresh_from_db()
    assert advance.status == Advance.Status.REQUESTED
    assert advance.accepted_hash == advance.price_hash


def test_accepting_a_price_no_longer_on_offer_is_refused(scenario: Scenario, owner: Client) -> None:
    advance = _requote(requested(owner, scenario.eligible[:1]))

    response = owner.post(
        reverse("portal:advance_accept", args=[advance.ref]), {"terms_hash": "a" * 64}
    )

    assert response.status_code == 409
    assert "The price changed since you looked" in page(response)
    advance.refresh_from_db()
    assert advance.status == Advance.Status.REQUOTE


def test_accepting_with_no_new_price_pending_is_refused(scenario: Scenario, owner: Client) -> None:
    advance = requested(owner, scenario.eligible[:1])

    response = owner.post(
        reverse("portal:advance_accept", args=[advance.ref]), {"terms_hash": "b" * 64}
    )

    assert response.status_code == 409
    assert "not waiting for your answer any more" in page(response)


def test_a_malformed_acceptance_is_a_400(scenario: Scenario, owner: Client) -> None:
    advance = _requote(requested(owner, scenario.eligible[:1]))

    response = owner.post(reverse("portal:advance_accept", args=[advance.ref]), {"terms_hash": "X"})

    assert response.status_code == 400
    assert "The price is missing" in page(response)


def test_declining_a_new_price_withdraws_with_the_reason(scenario: Scenario, owner: Client) -> None:
    advance = _requote(requested(owner, scenario.eligible[:1]))

    response = owner.post(
        reverse("portal:advance_withdraw", args=[advance.ref]), {"reason": "Too dear now"}
    )

    assert response.status_code == 302
    advance.refresh_from_db()
    assert advance.status == Advance.Status.WITHDRAWN
    assert "Too dear now" in advance.decision_note  # for the officers


def test_the_dashboard_alert_links_to_the_advance_waiting(
    scenario: Scenario, owner: Client
) -> None:
    advance = _requote(requested(owner, scenario.eligible[:1]))

    body = page(owner.get(reverse("portal:dashboard")))

    assert f"new price for advance {advance.ref}" in body
    assert f'href="{reverse("portal:advance", args=[advance.ref])}"' in body


def test_a_viewer_follows_but_may_not_withdraw_or_answer(
    scenario: Scenario, owner: Client, viewer: Client
) -> None:
    advance = _requote(requested(owner, scenario.eligible[:1]))
    body = page(viewer.get(reverse("portal:advance", args=[advance.ref])))
    assert "Only an owner or a finance member of your team can answer." in body
    assert "Accept the new price" not in body

    for name, data in [
        ("advance_accept", {"terms_hash": advance.price_hash}),
        ("advance_withdraw", {"reason": ""}),
    ]:
        response = viewer.post(reverse(f"portal:{name}", args=[advance.ref]), data)
        assert response.status_code == 403, name
        assert "Your role here is Viewer" in page(response)
    advance.refresh_from_db()
    assert advance.status == Advance.Status.REQUOTE


def test_withdrawing_and_accepting_need_a_csrf_token(scenario: Scenario, owner: Client) -> None:
    advance = _requote(requested(owner, scenario.eligible[:1]))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(scenario.user_a)

    accept = strict.post(
        reverse("portal:advance_accept", args=[advance.ref]), {"terms_hash": advance.price_hash}
    )
    withdraw = strict.post(reverse("portal:advance_withdraw", args=[advance.ref]))

    assert accept.status_code == withdraw.status_code == 403
    advance.refresh_from_db()
    assert advance.status == Advance.Status.REQUOTE


def test_the_advance_pages_speak_chinese(scenario: Scenario, owner: Client) -> None:
    owner.post(reverse("set_language"), {"language": "zh-hans", "next": "/portal/"})

    price = page(owner.get(reverse("portal:advance_price"), {"refs": scenario.eligible[:1]}))
    detail = page(owner.get(reverse("portal:advance", args=[scenario.advance.ref])))

    assert "现在支付给您" in price and "接受并申请" in price and "400.00 EUR" in price
    assert "买方付款如何偿还此融资" in detail and "已放款：还款中" in detail
    assert "Paid to you now" not in price and "Where it stands" not in detail
