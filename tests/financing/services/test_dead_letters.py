"""Dead letters re-run by an officer (issue 9, items 5 and 6): once, after commit, by name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User

import financing.services.dead_letters
from financing.exceptions import NotPermitted, WrongState
from financing.models import DeadLetter, Facility, SettlementWork
from financing.services.dead_letters import dead_letter_rerun
from financing.services.settlement import settlement_work_dead_letter
from tests.financing.conftest import Trade
from tests.financing.settlement_helpers import assignment, disbursed, payout, settle_pending

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TASK = "financing.tasks.settlement_run"


class SentTasks:
    """Stands in for the Celery app: records what would go to the broker."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_task(self, name: str, kwargs: dict[str, Any]) -> None:
        self.sent.append((name, kwargs))


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> SentTasks:
    sent = SentTasks()
    monkeypatch.setattr(financing.services.dead_letters, "current_app", sent)
    return sent


def dead(trade: Trade, officer: User, now: datetime) -> tuple[str, DeadLetter]:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    payout(trade, [(ref, "1000.00")])
    work = SettlementWork.objects.get()
    letter = settlement_work_dead_letter(
        work_id=work.pk, task_name=TASK, error="Failed: boom", attempts=1, now=now
    )
    return ref, letter


def test_a_rerun_sets_the_work_pending_and_sends_the_task_once_committed(
    trade: Trade,
    facility: Facility,
    officer: User,
    now: datetime,
    broker: SentTasks,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    ref, letter = dead(trade, officer, now)
    assert SettlementWork.objects.get().status == SettlementWork.Status.DEAD
    later = now + timedelta(hours=2)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        rerun = dead_letter_rerun(dead_letter=letter, officer=officer, now=later)
        assert broker.sent == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()

    assert (rerun.rerun_at, rerun.rerun_by_id) == (later, officer.pk)
    work = SettlementWork.objects.get()
    assert (work.status, work.enqueued_at) == (SettlementWork.Status.PENDING, later)
    assert broker.sent == [(TASK, {"work_id": work.pk})]
    # The worker that receives it settles the payout as if it had never failed.
    assert settle_pending(later) == 1
    assert assignment(ref).status == "settled"


def test_a_dead_letter_is_rerun_once_and_only_by_an_officer(
    trade: Trade,
    facility: Facility,
    officer: User,
    auditor: User,
    now: datetime,
    broker: SentTasks,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    _, letter = dead(trade, officer, now)

    with pytest.raises(NotPermitted):
        dead_letter_rerun(dead_letter=letter, officer=auditor, now=now)
    with django_capture_on_commit_callbacks(execute=True):
        dead_letter_rerun(dead_letter=letter, officer=officer, now=now)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(WrongState, match="re-run already"),
    ):
        dead_letter_rerun(dead_letter=letter, officer=officer, now=now)
    assert len(broker.sent) == 1


def test_a_rerun_leaves_work_another_delivery_finished_done(
    trade: Trade,
    facility: Facility,
    officer: User,
    now: datetime,
    broker: SentTasks,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    [ref] = trade.fundable(1)
    disbursed(trade, [ref], officer, now)
    payout(trade, [(ref, "1000.00")])
    work = SettlementWork.objects.get()
    settle_pending(now)  # done, then a late failure report of an earlier delivery
    letter = DeadLetter.objects.create(
        task_name=TASK,
        task_kwargs={"work_id": work.pk},
        work=work,
        error="x",
        attempts=1,
        failed_at=now,
    )

    with django_capture_on_commit_callbacks(execute=True):
        dead_letter_rerun(dead_letter=letter, officer=officer, now=now)

    assert SettlementWork.objects.get().status == SettlementWork.Status.DONE
    assert settle_pending(now) == 0  # the task sent finds nothing left to do
