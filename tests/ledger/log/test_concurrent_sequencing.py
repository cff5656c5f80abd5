"""The sequencer under concurrent ingest from 4 processes whose commits are deliberately delayed
(an entry's id is taken at insert, its commit comes later): no entry skipped, none twice, the
indexes gap-free, the tree the entries' tree.

The delays make entries commit out of id order; the test asserts it happened, and that each
such entry still got its place. Those are exactly the entries a sequencer that resumed after
the highest id it had sequenced would have skipped forever (the negative control).
"""

from __future__ import annotations

import multiprocessing
import random
import time
import traceback
from typing import Any

import pytest
from django.db import connections, transaction

from ledger import services
from ledger.log.merkle import root_of_leaves
from ledger.log.proofs import checkpoint_at
from ledger.log.sequencer import log_sequence
from ledger.models import Entry, LogLeaf, LogPending
from ledger.verify import leaf_hash
from tests.conftest import NOW, order_placed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.slow]

WRITERS = 4
APPENDS_EACH = 40
FORK = multiprocessing.get_context("fork")


def _writer(merchant_id: int, source: str, seed: int, start: Any, results: Any) -> None:
    rng = random.Random(seed)
    original = services.entries_write

    def slow_commit(*args: Any, **kwargs: Any) -> bool:
        written = original(*args, **kwargs)
        time.sleep(rng.uniform(0, 0.05))  # inserted, id taken, not yet committed
        return written

    services.entries_write = slow_commit  # type: ignore[assignment]
    start.wait()
    try:
        for n in range(APPENDS_EACH):
            # In a transaction, as a caller's: an append outside one commits as it writes.
            with transaction.atomic():
                services.entry_append(
                    source=source, merchant_id=merchant_id, event=order_placed(f"C-{n}"), now=NOW
                )
    except Exception:
        results.put(traceback.format_exc())
        raise
    finally:
        connections.close_all()
    results.put("done")


def _sequencer(stop: Any, results: Any) -> None:
    rounds = 0
    try:
        while not stop.is_set():
            log_sequence(now=NOW, limit=7)
            rounds += 1
            time.sleep(0.005)
    except Exception:
        results.put(traceback.format_exc())
        raise
    finally:
        connections.close_all()
    results.put(rounds)


def test_no_entry_skipped_none_twice_gap_free(make_merchant, marketplace) -> None:
    merchants = [make_merchant() for _ in range(WRITERS)]
    connections.close_all()
    start, stop = FORK.Barrier(WRITERS), FORK.Event()
    writer_results, sequencer_results = FORK.Queue(), FORK.Queue()
    writers = [
        FORK.Process(target=_writer, args=(m.pk, marketplace.code, i, start, writer_results))
        for i, m in enumerate(merchants)
    ]
    sequencer = FORK.Process(target=_sequencer, args=(stop, sequencer_results))
    sequencer.start()
    for process in writers:
        process.start()
    outcomes = [writer_results.get(timeout=120) for _ in writers]
    stop.set()
    rounds = sequencer_results.get(timeout=60)
    for process in [*writers, sequencer]:
        process.join(timeout=30)
    assert outcomes == ["done"] * WRITERS, outcomes
    assert isinstance(rounds, int) and rounds > 5, rounds

    while log_sequence(now=NOW).sequenced:  # what committed after the last concurrent round
        pass
    total = WRITERS * APPENDS_EACH
    assert Entry.objects.count() == total and not LogPending.objects.exists()
    leaves = list(LogLeaf.objects.order_by("log_index").values_list("log_index", "entry_id"))
    assert [index for index, _ in leaves] == list(range(total))  # gap-free
    entry_ids = [entry for _, entry in leaves]
    assert sorted(entry_ids) == sorted(Entry.objects.values_list("id", flat=True))  # all, once
    highest, late = 0, 0
    for entry_id in entry_ids:
        late += entry_id < highest
        highest = max(highest, entry_id)
    assert late > 0, "no commit came late: the test did not exercise what it is about"
    hashes = dict(Entry.objects.values_list("id", "hash"))
    root = root_of_leaves([leaf_hash(bytes.fromhex(hashes[e])) for e in entry_ids])
    latest = checkpoint_at()
    assert latest is not None and (latest.tree_size, bytes(latest.root_hash)) == (total, root)
