"""verify_ledger over several processes says what one process says, break for break.

The workers read only committed rows, so these tests commit (``transaction=True``); inside a
transaction ``ledger_verify`` stays in the calling process, which test_tampering covers.
"""

from __future__ import annotations

import itertools
import time

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from ledger import verification
from ledger.models import Chain, Entry
from ledger.services import entry_append
from ledger.verification import ledger_verify
from tests.conftest import order_placed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def merchants(make_merchant, marketplace, now):
    """Seven chains of different lengths, one of them without a single entry."""
    made = [make_merchant() for _ in range(7)]
    for number, merchant in enumerate(made[:6]):
        for n in range(3 + 4 * number):
            entry_append(
                source=marketplace.code,
                merchant_id=merchant.pk,
                event=order_placed(f"P{number}-{n}"),
                now=now,
            )
    Chain.objects.create(merchant=made[6])
    return made


@pytest.fixture
def spy(monkeypatch):
    """Records each call of the parallel path, so a test knows which path answered."""
    calls: list[int] = []
    original = verification._verify_parallel

    def recording(workers, on_progress):
        calls.append(workers)
        return original(workers, on_progress)

    monkeypatch.setattr(verification, "_verify_parallel", recording)
    return calls


def _forge_body(merchant_id: int, seq: int) -> None:
    """Change one byte of an entry's body behind the append-only trigger's back."""
    body = bytes(Entry.objects.get(chain=merchant_id, seq=seq).body)
    forged = body.replace(b'"100.00"', b'"900.00"')
    assert forged != body
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ledger_entry DISABLE TRIGGER USER")
        try:
            cursor.execute(
                "UPDATE ledger_entry SET body = %s WHERE chain_id = %s AND seq = %s",
                [forged, merchant_id, seq],
            )
        finally:
            cursor.execute("ALTER TABLE ledger_entry ENABLE TRIGGER USER")


def test_parallel_and_single_process_agree_on_an_intact_ledger(merchants, spy) -> None:
    single = ledger_verify()
    parallel = ledger_verify(workers=2)
    assert spy == [2]
    assert single.intact and parallel.intact
    assert (parallel.chains, parallel.entries) == (single.chains, single.entries) == (7, 78)


def test_the_first_break_in_merchant_order_is_named(merchants, spy) -> None:
    later, earlier = merchants[5], merchants[2]
    _forge_body(later.pk, 4)
    _forge_body(earlier.pk, 6)
    single = ledger_verify()
    parallel = ledger_verify(workers=3)
    assert spy == [3]
    assert parallel == single
    assert str(parallel.first_break) == (
        f"merchant {earlier.public_id} seq 6: body does not hash to the stored hash"
        " (the body was altered)"
    )


def test_the_command_keeps_its_exit_codes_and_messages(merchants, spy, capsys) -> None:
    call_command("verify_ledger", "--workers", "2")
    assert "OK: 7 chain(s), 78 entries intact" in capsys.readouterr().out
    _forge_body(merchants[3].pk, 2)
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_ledger", "--workers", "2")
    assert exit_.value.code == 1
    assert f"BROKEN: merchant {merchants[3].public_id} seq 2: body does not hash" in (
        capsys.readouterr().err
    )
    assert spy == [2, 2]


def test_a_head_behind_its_entries_is_a_break_in_one_snapshot(merchants, spy) -> None:
    """The workers read heads and entries in one snapshot: no append can explain the gap."""
    victim = merchants[1]
    Chain.objects.filter(pk=victim.pk).update(head_seq=3)
    result = ledger_verify(workers=2)
    assert spy == [2]
    assert str(result.first_break) == (
        f"merchant {victim.public_id} seq 4: entry beyond the chain head (head is seq 3)"
    )


def test_inside_a_transaction_the_calling_process_verifies(merchants, spy) -> None:
    """Workers cannot see what this transaction has not committed."""
    with transaction.atomic():
        result = ledger_verify(workers=2)
    assert spy == []
    assert result.intact and result.entries == 78


def test_the_ranges_cover_every_merchant_id() -> None:
    heads = {
        chain_id: verification._Head(str(chain_id), seq, "")
        for chain_id, seq in [(3, 50), (8, 10), (9, 10), (15, 30), (21, 0)]
    }
    bounds = verification._ranges(heads, 4)
    assert bounds[0][0] == 0 and bounds[-1][1] == 2**63 - 1
    assert all(upper == lower for (_, upper), (lower, _) in itertools.pairwise(bounds))
    assert len(bounds) <= 4


def _range_plan(*settings: str) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in settings:
            cursor.execute(setting)
        select = verification._COLUMNS + verification.OCCURRED_AT_SPELLED
        cursor.execute(f"EXPLAIN {select}{verification._RANGE_ENTRIES}", [0, 2**63 - 1])
        return "\n".join(row[0] for row in cursor.fetchall())


def test_a_range_streams_in_index_order_with_no_sort_and_no_parallel_scan(merchants) -> None:
    """A range is a large share of the table; left to itself the planner scans it all and sorts
    it (on disk, with parallel workers), which made two workers slower than one process."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_entry")
    assert "Sort" in _range_plan()  # the control: what the setting is there to prevent

    plan = _range_plan(verification._RANGE_PLAN)

    assert "entry_seq_unique" in plan
    assert "Sort" not in plan and "Gather" not in plan


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _settled_backends(expected: int) -> int:
    """The count of other backends once it reaches ``expected``, or after 5 s, what it is."""
    for _ in range(50):
        if (count := _backends()) == expected:
            return count
        time.sleep(0.1)
    return _backends()


def test_the_workers_connections_close_after_a_clean_run_and_after_a_break(merchants) -> None:
    before = _backends()
    assert ledger_verify(workers=2).intact
    assert _settled_backends(before) == before
    _forge_body(merchants[0].pk, 1)  # the first range breaks; the others are stopped
    assert not ledger_verify(workers=2).intact
    assert _settled_backends(before) == before
