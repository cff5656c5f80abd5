"""Many processes appending at once: no fork, no gap, no lost receipt.

Processes, not threads: each has its own interpreter and connection, as web workers do.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections import Counter
from contextlib import nullcontext
from itertools import pairwise
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connections, transaction

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
    merchant_id: int,
    source: str,
    prefix: str,
    lock: bool,
    in_transaction: bool,
    start: Any,
    results: Any,
) -> None:
    if not lock:
        services.chains_lock = _chains_without_lock  # type: ignore[assignment]
        services.head_known = lambda merchant_id: None  # no write on a remembered head either
    found: Counter[bool] = Counter()  # writes on remembered heads in a transaction: found or not
    if in_transaction:  # try remembered heads on every append, however often they are stale
        services.remembered_heads_pay = lambda: True  # type: ignore[assignment]
        services.remembered_head_found = lambda hit: found.update([hit])  # type: ignore[assignment]
    receipts, refused = [], 0
    start.wait()
    try:
        for n in range(APPENDS_EACH):
            try:
                with transaction.atomic() if in_transaction else nullcontext():
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
    results.put((receipts, refused, found))


def _run_writers(
    plan: list[tuple[int, str, str]], *, lock: bool, in_transaction: bool = False
) -> tuple[list[Any], int, Counter[bool]]:
    connections.close_all()  # children must open their own connections, not share ours
    start = FORK.Barrier(len(plan))
    results = FORK.Queue()
    processes = [
        FORK.Process(target=_writer, args=(m, source, prefix, lock, in_transaction, start, results))
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
    receipts = [r for batch, _, _ in outcomes for r in batch]
    found = sum((tally for _, _, tally in outcomes), Counter[bool]())
    return receipts, sum(refused for _, refused, _ in outcomes), found


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


@pytest.mark.parametrize("in_transaction", [False, True], ids=["alone", "in_a_transaction"])
def test_parallel_appends_never_fork_or_lose_a_receipt(
    setup, make_merchant, capsys, in_transaction
) -> None:
    """Alone, an append on a remembered head is one statement; in a transaction, forced to try
    remembered heads every time, its write takes the lock or finds the head moved on. Two
    writers on one chain tend to take turns, each finding the other moved the head, so a chain
    with a single writer is there to find its head where it left it."""
    hot, others, source = setup
    solo = make_merchant()
    plan = [(hot.pk, source, f"hot{w}") for w in range(WRITERS_ON_HOT_CHAIN)]
    plan += [(m.pk, source, f"other{m.pk}-{w}") for m in others for w in range(2)]
    plan += [(solo.pk, source, "solo")]

    receipts, refused, found = _run_writers(plan, lock=True, in_transaction=in_transaction)

    if in_transaction:  # both ways happened, or the test proves less than it says
        assert found[True] >= APPENDS_EACH - 1 and found[False] > 0, found
    assert refused == 0
    assert len(receipts) == len(plan) * APPENDS_EACH
    _assert_chain_sound(hot.pk, WRITERS_ON_HOT_CHAIN * APPENDS_EACH)
    for merchant in others:
        _assert_chain_sound(merchant.pk, 2 * APPENDS_EACH)
    _assert_chain_sound(solo.pk, APPENDS_EACH)
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

    receipts, refused, _ = _run_writers(plan, lock=False)

    assert refused > 0, "the race never happened; the control proves nothing"
    assert len(receipts) + refused == len(plan) * APPENDS_EACH
    _assert_chain_sound(hot.pk, len(receipts))
