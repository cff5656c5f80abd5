"""Dead letters: tasks that kept failing, re-run by an officer once the cause is fixed.

A re-run is safe because the task it sends again is idempotent (settlement claims its work with
a conditional update): it can only do what was left undone. Each dead letter is re-run once;
if the task fails again, it leaves a new dead letter with the new error.
"""

from __future__ import annotations

from datetime import datetime

from celery import current_app
from django.contrib.auth.models import User
from django.db import transaction

from financing.exceptions import WrongState
from financing.models import DeadLetter, SettlementWork
from financing.services._shared import officer_require

RERUN_PERMISSION = "financing.change_deadletter"


def dead_letter_rerun(*, dead_letter: DeadLetter, officer: User, now: datetime) -> DeadLetter:
    """Send a dead-lettered task again, once: its settlement work goes back to pending (so the
    sweep re-sends it should this send be lost) and the task is sent when this commits.

    :raises NotPermitted: the officer may not re-run dead letters.
    :raises WrongState: it was re-run already.
    """
    officer_require(officer, RERUN_PERMISSION)
    with transaction.atomic():
        rerun = DeadLetter.objects.filter(pk=dead_letter.pk, rerun_at__isnull=True).update(
            rerun_at=now, rerun_by=officer
        )
        if not rerun:
            raise WrongState("This dead letter was re-run already.")
        if dead_letter.work_id is not None:
            # Only dead work: work another delivery finished meanwhile stays done.
            SettlementWork.objects.filter(
                pk=dead_letter.work_id, status=SettlementWork.Status.DEAD
            ).update(status=SettlementWork.Status.PENDING, enqueued_at=now)
        name, kwargs = dead_letter.task_name, dict(dead_letter.task_kwargs)
        transaction.on_commit(lambda: current_app.send_task(name, kwargs=kwargs))
    return DeadLetter.objects.get(pk=dead_letter.pk)
