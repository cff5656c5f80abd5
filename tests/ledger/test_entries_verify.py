"""entries_verify, the one check of a run of entries, on rows altered in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection

from ledger.canonical import GENESIS_PREV
from ledger.entry_checks import EntryRow, entries_verify, entry_row
from ledger.events import format_timestamp
from ledger.models import Entry
from ledger.services import entry_append
from ledger.verification import OCCURRED_AT_SPELLED
from tests.conftest import order_placed

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(merchant, marketplace, now) -> list[EntryRow]:
    for n in range(3):
        entry_append(
            source=marketplace.code, merchant_id=merchant.pk, event=order_placed(f"O-{n}"), now=now
        )
    return [entry_row(e) for e in Entry.objects.filter(chain=merchant.pk).order_by("seq")]


def _with(row: EntryRow, **columns: object) -> EntryRow:
    names = ["chain_id", "seq", "prev_hash", "hash", "body", "type", "source", "ref", "occurred"]
    values = dict(zip(names, row, strict=True)) | columns
    return tuple(values.values())  # type: ignore[return-value]


def test_an_intact_run_verifies_from_genesis_to_the_head(merchant, rows) -> None:
    head = (3, rows[2][3])
    assert entries_verify(chain=merchant.public_id, rows=rows, head=head) == ["", "", ""]
    assert entries_verify(chain=merchant.public_id, rows=rows[1:], predecessor=(1, rows[0][3])) == [
        "",
        "",
    ]


def test_one_entry_between_its_stored_neighbours(merchant, rows) -> None:
    one = {"chain": merchant.public_id, "rows": [rows[1]], "predecessor": (1, rows[0][3])}

    assert entries_verify(**one, successor=rows[2]) == [""]
    assert entries_verify(**one, successor=_with(rows[2], prev_hash="f" * 64)) == [
        "entry 3 names another predecessor (this entry was replaced)"
    ]
    assert entries_verify(**one | {"predecessor": None}) == ["entry missing: seq 1 is not stored"]
    assert entries_verify(**one | {"predecessor": (1, "e" * 64)}) == [
        "the link is broken: it does not name the previous entry's hash"
    ]
    assert entries_verify(**one, head=(3, rows[2][3])) == ["entry missing: the chain head is seq 3"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"body": b"x"}, "body does not hash to the stored hash (the body was altered)"),
        ({"seq": 2}, "entry missing: the next entry stored is seq 2"),
        ({"prev_hash": "f" * 64}, "the link is broken: it does not name the previous entry's hash"),
        ({"ref": "O-other"}, "queryable columns differ from the body"),
        ({"occurred": "2026-10-01T09:00:00.000001Z"}, "queryable columns differ from the body"),
    ],
)
def test_the_first_problem_of_an_entry_is_named(merchant, rows, change, problem) -> None:
    first = _with(rows[0], **change)

    assert entries_verify(chain=merchant.public_id, rows=[first, *rows[1:]])[0] == problem


def test_a_head_naming_another_hash(merchant, rows) -> None:
    assert entries_verify(chain=merchant.public_id, rows=rows, head=(3, GENESIS_PREV))[2] == (
        "the chain head names another hash (this entry or the head was altered)"
    )


@pytest.mark.postgres
def test_postgresql_spells_occurred_at_as_entry_bodies_do() -> None:
    """ledger_verify has PostgreSQL spell the column; bodies are spelled by format_timestamp."""
    moments = [
        datetime(2026, 10, 1, 9, 0, tzinfo=UTC),
        datetime(2026, 10, 1, 9, 0, 0, 1, tzinfo=UTC),
        datetime(2028, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 3, 29, 2, 30, 0, 123_450, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(1999, 12, 31, 23, 59, 59, 500_000, tzinfo=timezone(timedelta(hours=-8))),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'America/St_Johns'")  # not UTC, not whole hours
        spelled = []
        for moment in moments:
            cursor.execute(
                f"SELECT {OCCURRED_AT_SPELLED} FROM (SELECT %s::timestamptz AS occurred_at) t",
                [moment],
            )
            spelled.append(cursor.fetchone()[0])

    assert spelled == [format_timestamp(moment) for moment in moments]
