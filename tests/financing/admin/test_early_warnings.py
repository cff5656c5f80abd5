"""The early-warning list as officers read it: on the home, in its own list, with the figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

import financing.tasks
from financing.admin.home import officer_home
from financing.business_day import business_day
from financing.models import EarlyWarning
from tests.financing.admin.conftest import SignIn
from tests.financing.admin.test_home import _section
from tests.financing.conftest import Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _warning(trade: Trade, kind: str, days_ago: int, summary: str) -> EarlyWarning:
    now = timezone.now()
    return EarlyWarning.objects.create(
        merchant=trade.merchant,
        kind=kind,
        observed_on=business_day(now) - timedelta(days=days_ago),
        evidence={"summary": summary, "last_30_days": 3, "prior_90_days": 30},
        created_at=now,
    )


def test_officers_see_each_active_warning_once_on_the_home_and_its_figures_in_the_list(
    live: Trade, auditor: User, sign_in: SignIn
) -> None:
    name = live.merchant.legal_name
    _warning(live, EarlyWarning.Kind.ORDERS_DROP, 1, "3 orders, 10 a month before (yesterday).")
    today = _warning(live, EarlyWarning.Kind.ORDERS_DROP, 0, "3 orders against 10 a month.")
    _warning(live, EarlyWarning.Kind.PAYOUTS_LATE, 9, "Seen too long ago to be active.")
    client = sign_in(auditor)  # reading it needs no permission beyond viewing

    home = _section(client.get(reverse("admin:index")).content.decode(), "early-warnings")
    assert f"{name} · Orders fell" in home
    assert "3 orders against 10 a month." in home and "(yesterday)" not in home
    assert "Seen too long ago" not in home
    [section] = [
        s for s in officer_home(user=auditor, now=timezone.now()) if s.title == "Early warnings"
    ]
    assert section.total == 1

    listing = client.get(reverse("admin:financing_earlywarning_changelist")).content.decode()
    assert listing.count(name) >= 3 and "Seen too long ago to be active." in listing
    page = client.get(reverse("admin:financing_earlywarning_change", args=[today.pk]))
    assert "&quot;prior_90_days&quot;: 30" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()  # read-only: nobody edits the list


def test_the_daily_task_runs_the_service(db: None) -> None:
    assert financing.tasks.early_warning_run() == 0  # nothing outstanding, nothing to watch
    entry = settings.CELERY_BEAT_SCHEDULE["early-warning-daily"]
    assert entry["task"] == financing.tasks.early_warning_run.name
