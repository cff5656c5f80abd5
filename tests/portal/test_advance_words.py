"""An advance's stages and statuses in words: every status has its words and its stages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import translation

from financing.models import Advance, Assignment
from portal.advances.selectors import StepState, advance_timeline
from portal.advances.words import ADVANCE_STATUS, RECEIVABLE_STATUS
from tests.conftest import NOW

S = Advance.Status
DONE, CURRENT, UPCOMING, STOPPED = (
    StepState.DONE,
    StepState.CURRENT,
    StepState.UPCOMING,
    StepState.STOPPED,
)


def test_every_status_has_words_in_both_languages() -> None:
    assert set(ADVANCE_STATUS) == set(S.values)
    assert set(RECEIVABLE_STATUS) == set(Assignment.Status.values)
    with translation.override("zh-hans"):
        assert str(ADVANCE_STATUS[S.REQUOTE]) == "新报价：需要您答复"


def _advance(status: str, *, approved: bool = False, disbursed: bool = False) -> Advance:
    later = NOW + timedelta(hours=1)
    return Advance(
        status=status,
        requested_at=NOW,
        approved_at=later if approved else None,
        disbursed_at=later if disbursed else None,
        decided_at=later if status in (S.WITHDRAWN, S.REJECTED) else None,
        repaid_at=later if status == S.REPAID else None,
    )


@pytest.mark.parametrize(
    ("advance", "states"),
    [
        (_advance(S.REQUESTED), [DONE, CURRENT, UPCOMING, UPCOMING]),
        (_advance(S.REQUOTE), [DONE, CURRENT, UPCOMING, UPCOMING, UPCOMING]),
        (_advance(S.WITHDRAWN), [DONE, STOPPED]),
        (_advance(S.REJECTED), [DONE, STOPPED]),
        (_advance(S.APPROVED, approved=True), [DONE, DONE, CURRENT, UPCOMING]),
        (_advance(S.DISBURSED, approved=True, disbursed=True), [DONE, DONE, DONE, CURRENT]),
        (_advance(S.OVERDUE, approved=True, disbursed=True), [DONE, DONE, DONE, STOPPED]),
        (_advance(S.REPAID, approved=True, disbursed=True), [DONE, DONE, DONE, DONE]),
    ],
    ids=lambda value: value.status if isinstance(value, Advance) else "",
)
def test_the_stages_of_each_status(advance: Advance, states: list[str]) -> None:
    steps = advance_timeline(advance)

    assert [step.state for step in steps] == states
    # What is done says when; what is to come does not.
    assert all(step.at is not None for step in steps if step.state == DONE)
    assert all(step.at is None for step in steps if step.state == UPCOMING)
