"""(source, idempotency key) makes appends safe to retry: one entry and one receipt, every time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from ledger.exceptions import IdempotencyKeyReused
from ledger.models import Chain, Entry, Order
from ledger.services import NewEntry, entries_append, entry_append
from tests.conftest import order_placed


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_same_key_and_body_twenty_times_gives_one_entry(merchant, marketplace, now) -> None:
    receipts = [
        entry_append(
            source=marketplace.code,
            merchant_id=merchant.pk,
            event=order_placed("ORD-7"),
            idempotency_key="req-7",
            now=now,
        )
        for _ in range(20)
    ]
    assert Entry.objects.count() == 1
    assert len(set(receipts)) == 1
    assert receipts[0].seq == 1 and receipts[0].merchant == merchant.public_id


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_same_key_other_body_is_refused_and_writes_nothing(merchant, marketplace, now) -> None:
    entry_append(
        source=marketplace.code,
        merchant_id=merchant.pk,
        event=order_placed("ORD-1"),
        idempotency_key="req-1",
        now=now,
    )
    with pytest.raises(IdempotencyKeyReused, match="req-1"):
        entry_append(
            source=marketplace.code,
            merchant_id=merchant.pk,
            event=order_placed("ORD-1", amount="100.01"),
            idempotency_key="req-1",
            now=now,
        )
    assert Entry.objects.count() == 1
    assert Chain.objects.get(pk=merchant.pk).head_seq == 1
    assert Order.objects.get().amount_minor == 10000


@pytest.mark.django_db
def test_default_key_is_type_and_ref(merchant, marketplace, now) -> None:
    first = entry_append(
        source=marketplace.code, merchant_id=merchant.pk, event=order_placed("ORD-2"), now=now
    )
    again = entry_append(
        source=marketplace.code, merchant_id=merchant.pk, event=order_placed("ORD-2"), now=now
    )
    assert first == again
    with pytest.raises(IdempotencyKeyReused):
        entry_append(
            source=marketplace.code,
            merchant_id=merchant.pk,
            event=order_placed("ORD-2", currency="USD"),
            now=now,
        )


@pytest.mark.django_db
def test_keys_are_scoped_per_source(merchant, marketplace, now) -> None:
    for source in (marketplace.code, "other-marketplace"):
        entry_append(
            source=source,
            merchant_id=merchant.pk,
            event=order_placed(f"ORD-{source}"),
            idempotency_key="shared-key",
            now=now,
        )
    assert Entry.objects.count() == 2


@pytest.mark.django_db
def test_batch_mixing_replays_and_new_events(merchant, marketplace, now) -> None:
    old = entry_append(
        source=marketplace.code, merchant_id=merchant.pk, event=order_placed("A"), now=now
    )
    receipts = entries_append(
        source=marketplace.code,
        entries=[NewEntry(merchant.pk, order_placed(ref)) for ref in ("A", "B", "A", "C")],
        now=now,
    )
    assert receipts[0] == receipts[2] == old
    assert [r.seq for r in receipts] == [1, 2, 1, 3]
    assert Entry.objects.count() == 3


def _race(workers: int, append) -> list[object]:
    """Run ``append`` on ``workers`` threads released at once; each has its own connection."""
    barrier = threading.Barrier(workers)

    def run(_: int) -> object:
        barrier.wait()
        try:
            return append()
        except IdempotencyKeyReused as exc:
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, range(workers)))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_racing_one_key_write_one_entry(merchant, marketplace, now) -> None:
    outcomes = _race(
        16,
        lambda: entry_append(
            source=marketplace.code,
            merchant_id=merchant.pk,
            event=order_placed("RACE"),
            idempotency_key="race-key",
            now=now,
        ),
    )
    assert Entry.objects.count() == 1
    assert len(set(outcomes)) == 1  # sixteen identical receipts, no errors
    assert Chain.objects.get(pk=merchant.pk).head_seq == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_key_raced_across_merchants_lands_once(make_merchant, marketplace, now) -> None:
    """Different chains do not share a lock; the unique index alone decides the winner."""
    merchants = [make_merchant() for _ in range(8)]
    turn = iter(merchants)
    lock = threading.Lock()

    def append() -> object:
        with lock:
            target = next(turn)
        return entry_append(
            source=marketplace.code,
            merchant_id=target.pk,
            event=order_placed("X"),
            idempotency_key="cross-key",
            now=now,
        )

    outcomes = _race(8, append)
    assert Entry.objects.count() == 1
    assert sum(not isinstance(o, IdempotencyKeyReused) for o in outcomes) == 1


@pytest.mark.django_db
def test_two_merchants_may_use_the_same_document_number(make_merchant, marketplace, now) -> None:
    first, second = make_merchant(), make_merchant()
    receipts = [
        entry_append(
            source=marketplace.code, merchant_id=m.pk, event=order_placed("INV-1"), now=now
        )
        for m in (first, second)
    ]
    assert [r.merchant for r in receipts] == [first.public_id, second.public_id]
    assert Entry.objects.count() == 2


@pytest.mark.sqlite_smoke
@pytest.mark.django_db
def test_appending_nothing_writes_nothing(marketplace, now) -> None:
    assert entries_append(source=marketplace.code, entries=[], now=now) == []
    assert Entry.objects.count() == 0 and Chain.objects.count() == 0
