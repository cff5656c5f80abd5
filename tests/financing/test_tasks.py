"""The financing tasks: keyword-only entry points, named apart from the services they call."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from config.celery import app
from financing.models import Advance, AssignmentNotice, Facility
from financing.services.decisions import advance_approve
from financing.services.requests import advance_request
from financing.tasks import notice_send
from tests.conftest import NOW
from tests.financing.conftest import Trade

pytestmark = pytest.mark.django_db


@pytest.fixture
def notice(
    trade: Trade,
    open_facility: Callable[..., Facility],
    officer: User,
) -> AssignmentNotice:
    """A disbursed advance's notice, pending: its marketplace has no webhook endpoint."""
    open_facility(trade.merchant)
    refs = trade.fundable(1, amount="1000.00")
    advance = advance_request(merchant=trade.merchant, refs=refs, request_key="t1", now=NOW)
    assert advance_approve(advance=advance, officer=officer, now=NOW).status == (
        Advance.Status.DISBURSED
    )
    return AssignmentNotice.objects.get(advance=advance)


def test_every_scheduled_task_is_registered() -> None:
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert "financing.tasks.overdue_sweep_run" in scheduled
    assert scheduled <= set(app.tasks)


def test_notice_send_takes_the_notice_id_by_keyword(notice: AssignmentNotice) -> None:
    notice_send(notice_id=notice.pk)

    notice.refresh_from_db()
    assert (notice.status, notice.attempts) == (AssignmentNotice.Status.PENDING, 1)
    assert notice.last_error == "The marketplace has no active webhook endpoint."
    with pytest.raises(TypeError):
        notice_send(notice.pk)


def test_a_notice_given_up_after_its_retries_is_failed_with_why(notice: AssignmentNotice) -> None:
    # What Celery calls once the retries are spent: the dead letter officers see.
    notice_send.on_failure(RuntimeError("HTTP 503"), "task-id", (), {"notice_id": notice.pk}, None)

    notice.refresh_from_db()
    assert notice.status == AssignmentNotice.Status.FAILED
    assert notice.last_error == "Gave up after retries: HTTP 503"
