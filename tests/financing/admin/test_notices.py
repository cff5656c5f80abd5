"""Webhook endpoints for notices of assignment (financing.admin.notices)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from financing.admin import notices
from financing.exceptions import WrongState
from financing.models import AssignmentNotice, Facility, WebhookEndpoint
from financing.notices import notice_deliver, notice_give_up
from financing.services.decisions import advance_approve
from financing.services.requests import advance_request
from merchants.models import Marketplace
from tests.financing.admin.conftest import SignIn, _messages
from tests.financing.conftest import NoticeTaskRecorder, Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


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
        assert endpoint.secret[:12] not in page.content.decode()
        assert "sealed (shown once" in page.content.decode()


def test_a_webhook_change_goes_through_the_service_and_keeps_the_secret(
    marketplace: Marketplace, officer: User, sign_in: SignIn
) -> None:
    endpoint = WebhookEndpoint.objects.create(marketplace=marketplace, url="https://a.example/n")
    url = reverse("admin:financing_webhookendpoint_change", args=[endpoint.pk])

    sign_in(officer).post(url, {"url": "https://b.example/n", "_save": "Save"})

    changed = WebhookEndpoint.objects.get()
    assert (changed.url, changed.active) == ("https://b.example/n", False)
    assert (changed.marketplace, changed.secret) == (marketplace, endpoint.secret)


def test_a_refused_webhook_endpoint_returns_to_the_form_and_logs_nothing(
    marketplace: Marketplace, officer: User, sign_in: SignIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**kwargs: object) -> WebhookEndpoint:
        raise WrongState("Refused for the test.")

    monkeypatch.setattr(notices, "webhook_endpoint_create", refuse)
    add = reverse("admin:financing_webhookendpoint_add")
    data = {"marketplace": marketplace.pk, "url": "https://market.example/notices", "active": "on"}

    response = sign_in(officer).post(add, data)

    assert (response.status_code, response["Location"]) == (302, add)
    assert not WebhookEndpoint.objects.exists()
    assert not LogEntry.objects.exists()


# --- notices: delivery history and the officer's re-send ---------------------------------------


@pytest.fixture
def failed_notice(
    live: Trade, line: Facility, officer: User, notices_enqueued: NoticeTaskRecorder
) -> AssignmentNotice:
    refs = live.fundable(1, due_in_days=30)
    advance = advance_request(
        merchant=live.merchant, refs=refs, request_key="adm", now=timezone.now()
    )
    advance_approve(advance=advance, officer=officer, now=timezone.now())
    notice = AssignmentNotice.objects.get(advance=advance)
    notice_deliver(notice_id=notice.pk, now=timezone.now())  # no endpoint: waits
    notice_give_up(notice_id=notice.pk, error="Gave up after retries: HTTP 503", now=timezone.now())
    return notice


def test_a_notice_page_shows_its_delivery_history(
    failed_notice: AssignmentNotice, auditor: User, sign_in: SignIn
) -> None:
    url = reverse("admin:financing_assignmentnotice_change", args=[failed_notice.pk])

    page = sign_in(auditor).get(url).content.decode()

    assert "delivery history" in page.lower()
    assert "The marketplace has no active webhook endpoint." in page
    assert "Gave up after retries: HTTP 503" in page
    assert page.index("No endpoint or address") < page.index("Gave up after retries: HTTP 503")


def test_an_officer_re_sends_a_failed_notice_from_the_list(
    failed_notice: AssignmentNotice,
    senior: User,
    sign_in: SignIn,
    notices_enqueued: NoticeTaskRecorder,
) -> None:
    changelist = reverse("admin:financing_assignmentnotice_changelist")
    data = {"action": "resend", "_selected_action": [failed_notice.pk]}

    response = sign_in(senior).post(changelist, data, follow=True)

    assert "Re-sending 1 notice(s)." in _messages(response)
    failed_notice.refresh_from_db()
    assert failed_notice.status == AssignmentNotice.Status.PENDING
    assert failed_notice.history.last().officer == senior  # type: ignore[union-attr]


def test_an_auditor_has_no_re_send_action(
    failed_notice: AssignmentNotice, auditor: User, sign_in: SignIn
) -> None:
    changelist = reverse("admin:financing_assignmentnotice_changelist")
    client = sign_in(auditor)

    assert 'value="resend"' not in client.get(changelist).content.decode()
    client.post(changelist, {"action": "resend", "_selected_action": [failed_notice.pk]})
    failed_notice.refresh_from_db()
    assert failed_notice.status == AssignmentNotice.Status.FAILED
