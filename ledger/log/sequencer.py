"""The sequencer: the global log's one writer, like a Certificate Transparency log's.

A round, in one transaction holding the singleton lock (LogState): take the oldest queued
entries (ledger_logpending, filled by a trigger in each append's own transaction, so an entry
that commits late is queued when it commits and picked up by the next round, never skipped),
give them the next log indexes in id order, write their leaves and every complete subtree they
finish, dequeue exactly those entries, and sign a checkpoint of the new tree. Its cost per entry
is about two hash computations and a row or two; a round reads O(log n) nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from ledger.log.checkpoints import checkpoint_sign
from ledger.log.merkle import Frontier, NodeKey, range_nodes
from ledger.models import LogCheckpoint, LogLeaf, LogNode, LogState
from ledger.verify import leaf_hash


@dataclass(frozen=True, slots=True)
class SequenceResult:
    sequenced: int
    tree_size: int
    checkpoint: LogCheckpoint | None  # the one this round signed, if the tree grew


def log_state_lock() -> LogState:
    """Lock the sequencer's singleton row, creating it if a flushed test database lost it."""
    state = LogState.objects.select_for_update().filter(pk=1).first()
    if state is None:
        LogState.objects.bulk_create([LogState(pk=1)], ignore_conflicts=True)
        state = LogState.objects.select_for_update().get(pk=1)
    return state


def frontier_read(size: int) -> Frontier:
    """The right edge of the tree of ``size``: at most 64 stored nodes, in one query."""
    keys = range_nodes(0, size)
    return Frontier(size, [(key, hashes[key]) for hashes in [nodes_read(keys)] for key in keys])


def nodes_read(keys: list[NodeKey] | set[NodeKey]) -> dict[NodeKey, bytes]:
    """The stored hashes of tree nodes ``keys``, in one query.

    :raises LookupError: a node that should be stored is not.
    """
    if not keys:
        return {}
    where = Q()
    for level, index in keys:
        where |= Q(level=level, index=index)
    found = {
        (level, index): bytes(hash_)
        for level, index, hash_ in LogNode.objects.filter(where).values_list(
            "level", "index", "hash"
        )
    }
    missing = set(keys) - found.keys()
    if missing:
        raise LookupError(f"tree nodes missing: {sorted(missing)[:5]}")
    return found


# The queue's head with each entry's hash, in one read: a LEFT JOIN, so an entry deleted behind
# the triggers' back shows as a NULL hash rather than vanishing from the round.
_QUEUED = """
SELECT p.entry_id, e.hash
FROM ledger_logpending p LEFT JOIN ledger_entry e ON e.id = p.entry_id
ORDER BY p.entry_id
LIMIT %s
"""
# Exactly the rows the round read: their leaves are the ones it wrote, from the old tree size
# on. One queued meanwhile, with a lower id, has no leaf and stays queued. One parameter,
# where a list of the ids would be ten thousand for PostgreSQL's parser to split.
_DEQUEUE = """
DELETE FROM ledger_logpending
WHERE entry_id IN (SELECT entry_id FROM ledger_logleaf WHERE log_index >= %s)
"""
_NODES_INSERT_PG = """
INSERT INTO ledger_lognode (level, "index", hash)
SELECT * FROM unnest(%s::smallint[], %s::bigint[], %s::bytea[])
"""


def log_sequence(*, now: datetime, limit: int | None = None) -> SequenceResult:
    """Sequence the next batch of queued entries and sign a checkpoint of the grown tree.

    :raises SigningKeyInvalid: the bank's log key is missing or malformed (settings).
    :raises LookupError: a queued entry was deleted behind the triggers' back.
    """
    limit = limit or settings.LOG_SEQUENCE_BATCH
    with transaction.atomic():
        state = log_state_lock()
        with connection.cursor() as cursor:
            cursor.execute(_QUEUED, [limit])
            queued: list[tuple[int, str | None]] = cursor.fetchall()
        if not queued:
            return SequenceResult(0, state.tree_size, None)
        gone = [entry_id for entry_id, hash_ in queued if hash_ is None]
        if gone:
            raise LookupError(f"queued entries {gone[:5]} are gone: run verify_ledger")
        frontier = frontier_read(state.tree_size)
        leaves, nodes = [], []
        for entry_id, hash_ in queued:
            leaves.append(LogLeaf(log_index=frontier.size, entry_id=entry_id, sequenced_at=now))
            frontier.append(leaf_hash(bytes.fromhex(str(hash_))), lambda k, h: nodes.append((k, h)))
        LogLeaf.objects.bulk_create(leaves, batch_size=5000)
        nodes_insert(nodes)
        with connection.cursor() as cursor:
            cursor.execute(_DEQUEUE, [state.tree_size])
        state.tree_size = frontier.size
        state.save(update_fields=["tree_size"])
        checkpoint = checkpoint_sign(size=frontier.size, root=frontier.root(), now=now)
    return SequenceResult(len(queued), frontier.size, checkpoint)


def nodes_insert(nodes: list[tuple[NodeKey, bytes]]) -> None:
    """Store tree nodes ``nodes`` ((level, index), hash).

    On PostgreSQL one statement of three arrays: Django's bulk insert gives a binary column a
    placeholder per row, and splitting a statement of tens of thousands of them cost the
    sequencer most of its round (profiled). Elsewhere the ORM's bulk insert, which a test
    compares with this on the same nodes.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _NODES_INSERT_PG,
                [[k[0] for k, _ in nodes], [k[1] for k, _ in nodes], [h for _, h in nodes]],
            )
        return
    LogNode.objects.bulk_create(
        [LogNode(level=level, index=index, hash=h) for (level, index), h in nodes],
        batch_size=5000,
    )


def log_sequence_all(*, now: datetime) -> SequenceResult:
    """Run rounds until the queue is empty (each its own transaction and checkpoint)."""
    total, last = 0, SequenceResult(0, 0, None)
    while True:
        result = log_sequence(now=now)
        if result.sequenced == 0:
            return SequenceResult(total, result.tree_size, last.checkpoint)
        total, last = total + result.sequenced, result
