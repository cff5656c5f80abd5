"""Issue 13: statements on a hot path are planned once, not at every execution.

PostgreSQL plans a prepared statement anew each time it expects a plan for the values given to
beat its generic plan. Two hot statements paid that: the evidence's held read, whose statuses
were parameters (a partial index serves only constants), and the chain's write of a few
entries, whose array parameters the generic plan guesses at. The first now writes its statuses
into the SQL (``ledger.sql.literals``); the second runs inside ``ledger.sql.generic_plans``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from ledger import writer
from ledger.services import NewEntry, entries_append
from ledger.sql import generic_plans, literals
from merchants.models import Merchant
from tests.bench._setup import repayment_event


def test_literals_writes_constants_and_refuses_anything_else() -> None:
    assert literals(["held", "assigned"]) == "'held', 'assigned'"
    for unsafe in ("held'", "held; DROP TABLE x", "Held", "two words", ""):
        with pytest.raises(ValueError, match="Not a plain constant"):
            literals([unsafe])


def _plan_cache_mode() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('plan_cache_mode')")
        (mode,) = cursor.fetchone()
    return str(mode)


def _plans(statement_start: str) -> tuple[int, int]:
    """(generic, custom) plans this session's prepared statements starting so have run on."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(generic_plans), 0), COALESCE(SUM(custom_plans), 0)"
            " FROM pg_prepared_statements WHERE statement LIKE %s",
            [statement_start.replace("%", r"\%") + "%"],
        )
        generic, custom = cursor.fetchone()
    return int(generic), int(custom)


# PostgreSQL prefers a plan for the values given here: with the status a parameter, the
# partial index on live assignments cannot serve the generic plan.
_HELD = (
    "SELECT id FROM financing_assignment WHERE status IN (%s, %s) AND merchant_id = %s"
    " AND invoice_ref = %s"
)


def _held_read_ten_times() -> None:
    for _ in range(10):
        with connection.cursor() as cursor:
            cursor.execute(_HELD, ["held", "assigned", 1, "INV-1"])
            cursor.fetchall()


@pytest.mark.postgres
@pytest.mark.django_db
def test_statements_inside_run_on_generic_plans_and_the_mode_comes_back() -> None:
    _held_read_ten_times()  # prepared on the client's fifth execution (DATABASE_PREPARE_THRESHOLD)
    generic_before, custom_before = _plans("SELECT id FROM financing_assignment")
    assert custom_before > 0, "PostgreSQL planned the control statement generically anyway"

    with generic_plans():
        _held_read_ten_times()

    generic, custom = _plans("SELECT id FROM financing_assignment")
    assert (generic - generic_before, custom - custom_before) == (10, 0)
    assert _plan_cache_mode() == "auto"


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_mode_set_before_comes_back_not_a_default() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")

    with generic_plans():
        assert _plan_cache_mode() == "force_generic_plan"

    assert _plan_cache_mode() == "force_custom_plan"


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_failed_statement_inside_takes_the_change_with_its_savepoint() -> None:
    with (
        pytest.raises(DataError),
        transaction.atomic(),
        generic_plans(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT 1 / 0")

    assert _plan_cache_mode() == "auto"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_nothing_is_set() -> None:
    with generic_plans():
        assert _plan_cache_mode() == "auto"


_WRITE = "WITH earlier AS"


@contextmanager
def _plain_plans() -> Iterator[None]:
    """The negative control: the write as before, on whatever plan PostgreSQL prefers."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(writer, "generic_plans", nullcontext)
        yield


def _two_entry_appends(merchant: Merchant, now: datetime, first: int, count: int) -> None:
    for n in range(first, first + count):
        events = [repayment_event(f"REP-{n}-{k}", now, "1.00") for k in (1, 2)]
        with transaction.atomic():  # as a disbursement's entries are written, in its transaction
            entries_append(
                source="chainfin",
                entries=[NewEntry(merchant.pk, event) for event in events],
                now=now,
            )


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("control", [False, True], ids=["generic", "control"])
def test_a_few_entries_are_written_on_the_generic_plan(
    merchant: Merchant, now: datetime, control: bool
) -> None:
    with _plain_plans() if control else nullcontext():
        _two_entry_appends(merchant, now, 0, 12)

    generic, custom = _plans(_WRITE)
    if control:
        # PostgreSQL's own choice: five plans for the values given before it weighs the generic
        # one, and in the books benchmark's database a plan for the values given every time.
        assert custom >= 5, (generic, custom)
        return
    assert custom == 0 and generic > 0, (generic, custom)


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_batch_larger_than_the_generic_plan_guesses_is_left_to_postgresql(
    merchant: Merchant, now: datetime
) -> None:
    """Ten rows or more cost more in a plan for the values given than in the generic plan,
    which PostgreSQL then picks by itself: no statements to set the mode around it."""

    def set_configs(count: int, first: int) -> int:
        events = [repayment_event(f"REP-B{first + k}", now, "1.00") for k in range(count)]
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            entries_append(
                source="chainfin", entries=[NewEntry(merchant.pk, e) for e in events], now=now
            )
        return sum("set_config('plan_cache_mode'" in q["sql"] for q in queries.captured_queries)

    assert set_configs(9, 0) == 2
    assert set_configs(10, 100) == 0
