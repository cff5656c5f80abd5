"""Many processes appending at once: no fork, no gap, no lost receipt.

Processes, not threads: each has its own interpreter and connection, as web workers do.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connections

from ledger import services
from ledger.locks import LockedChain
from ledger.models import Chain, Entry
from tests.conftest import order_placed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITERS_ON_HOT_CHAIN = 8
WRITERS_ON_OTHER_CHAINS = 4
APPENDS_EACH = 50
FORK = multiprocessing.get_context("fork")


def _chains_without_lock(merchant_ids: Any) -> dict[int, LockedChain]:
    """The negative control: read the heads with no FOR UPDATE, as a careless append would."""
    chains = Chain.objects.select_related("merchant").filter(merchant_id__in=set(merchant_ids))
    return {
        c.merchant_id: LockedChain(c.merchant_id, c.merchant.public_id, c.head_seq, c.head_hash)
        for c in chains
    }


def _writer(
    merchant_id: int, source: str, prefix: str, lock: bool, start: Any, results: Any
) -> None:
    if not lock:
        services.chains_lock = _chains_without_lock  # type: ignore[assignment]
        services.head_known = lambda merchant_id: None  # no write on a remembered head either
    receipts, refused = [], 0
    start.wait()
    try:
        for n in range(APPENDS_EACH):
            try:
                receipt = services.entry_append(
                    source=source,
                    merchant_id=merchant_id,
                    event=order_placed(f"{prefix}-{n}"),
                    now=NOW,
                )
            except IntegrityError:
                refused += 1
            else:
                receipts.append((receipt.merchant, receipt.seq, receipt.hash, receipt.ref))
    except Exception:  # report, so the parent fails with the cause instead of a timeout
        results.put(traceback.format_exc())
        raise
    finally:
        connections.close_all()
    results.put((receipts, refused))


def _run_writers(plan: list[tuple[int, str, str]], *, lock: bool) -> tuple[list[Any], int]:
    connections.close_all()  # children must open their own connections, not share ours
    start = FORK.Barrier(len(plan))
    results = FORK.Queue()
    processes = [
        FORK.Process(target=_writer, args=(m, source, prefix, lock, start, results))
        for m, source, prefix in plan
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    crashes = [outcome for outcome in outcomes if isinstance(outcome, str)]
    assert not crashes, crashes[0]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    receipts = [r for batch, _ in outcomes for r in batch]
    return receipts, sum(refused for _, refused in outcomes)


def _assert_chain_sound(merchant_id: int, expected: int) -> None:
    rows = list(
        Entry.objects.filter(chain=merchant_id).order_by("seq").values("seq", "prev_hash", "hash")
    )
    assert [r["seq"] for r in rows] == list(range(1, expected + 1))  # gap-free
    prevs = Counter(r["prev_hash"] for r in rows)
    assert max(prevs.values()) == 1  # no fork: no entry has two successors
    for earlier, later in pairwise(rows):
        assert later["prev_hash"] == earlier["hash"]
    head = Chain.objects.get(pk=merchant_id)
    assert (head.head_seq, head.head_hash) == (expected, rows[-1]["hash"])


NOW = None  # set per test before forking; children inherit it


@pytest.fixture
def setup(make_merchant, marketplace, now):
    global NOW
    NOW = now
    hot = make_merchant()
    others = [make_merchant() for _ in range(WRITERS_ON_OTHER_CHAINS // 2)]
    return hot, others, marketplace.code


def test_parallel_appends_never_fork_or_lose_a_receipt(setup, capsys) -> None:
    hot, others, source = setup
    plan = [(hot.pk, source, f"hot{w}") for w in range(WRITERS_ON_HOT_CHAIN)]
    plan += [(m.pk, source, f"other{m.pk}-{w}") for m in others for w in range(2)]

    receipts, refused = _run_writers(plan, lock=True)

    assert refused == 0
    assert len(receipts) == len(plan) * APPENDS_EACH
    _assert_chain_sound(hot.pk, WRITERS_ON_HOT_CHAIN * APPENDS_EACH)
    for merchant in others:
        _assert_chain_sound(merchant.pk, 2 * APPENDS_EACH)
    stored = set(
        Entry.objects.values_list("chain__merchant__public_id", "seq", "hash", "external_ref")
    )
    assert set(receipts) == stored  # every acknowledged receipt is there, exactly as acknowledged
    call_command("verify_ledger")  # raises SystemExit(1) on any break
    assert "entries intact" in capsys.readouterr().out


def test_without_the_head_lock_the_database_still_refuses_the_fork(setup) -> None:
    hot, _, source = setup
    Chain.objects.create(merchant=hot)  # the lock-free reader below does not create chains
    plan = [(hot.pk, source, f"nolock{w}") for w in range(WRITERS_ON_HOT_CHAIN)]

    receipts, refused = _run_writers(plan, lock=False)

    assert refused > 0, "the race never happened; the control proves nothing"
    assert len(receipts) + refused == len(plan) * APPENDS_EACH
    _assert_chain_sound(hot.pk, len(receipts))
