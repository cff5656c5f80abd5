"""The sequencer: gap-free indexes in id order, the tree it stores, checkpoints it signs."""

from __future__ import annotations

import pytest

from ledger.log.checkpoints import log_verifier
from ledger.log.merkle import root_of_leaves
from ledger.log.proofs import checkpoint_at
from ledger.log.sequencer import frontier_read, log_sequence, log_sequence_all
from ledger.models import Entry, LogLeaf, LogPending
from ledger.services import entry_append
from ledger.verify import checkpoint_parse, leaf_hash, note_parse, note_verify
from tests.conftest import order_placed

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite_smoke]


def _append(merchant, marketplace, now, n: int, prefix: str = "O") -> None:
    for i in range(n):
        entry_append(
            source=marketplace.code,
            merchant_id=merchant.pk,
            event=order_placed(f"{prefix}-{i}"),
            now=now,
        )


def test_entries_get_gap_free_indexes_in_id_order_and_a_signed_checkpoint(
    merchant, marketplace, now
) -> None:
    _append(merchant, marketplace, now, 7)
    assert LogPending.objects.count() == 7
    result = log_sequence(now=now, limit=5)
    assert (result.sequenced, result.tree_size) == (5, 5)
    result = log_sequence_all(now=now)
    assert (result.sequenced, result.tree_size) == (2, 7)
    assert not LogPending.objects.exists()
    leaves = list(LogLeaf.objects.order_by("log_index").values_list("log_index", "entry_id"))
    assert [index for index, _ in leaves] == list(range(7))
    assert [entry for _, entry in leaves] == sorted(Entry.objects.values_list("id", flat=True))
    hashes = [leaf_hash(bytes.fromhex(Entry.objects.get(pk=entry).hash)) for _, entry in leaves]
    checkpoint = checkpoint_at()
    assert checkpoint is not None
    note = note_parse(checkpoint.note)
    note_verify(note, log_verifier())
    parsed = checkpoint_parse(note.text)
    assert parsed.size == 7
    assert parsed.root == root_of_leaves(hashes) == frontier_read(7).root()
    assert checkpoint_at(tree_size=5).root_hash == root_of_leaves(hashes[:5])


def test_an_empty_queue_signs_nothing(db, now) -> None:
    result = log_sequence(now=now)
    assert (result.sequenced, result.checkpoint) == (0, None)


@pytest.mark.postgres
def test_the_postgresql_node_insert_stores_what_the_orm_fallback_stores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import connection, transaction

    from ledger.log import sequencer
    from ledger.models import LogNode

    nodes = [((level, index), bytes([level, index % 256]) * 16) for level, index in SAMPLE_NODES]

    def stored() -> list[tuple[int, int, bytes]]:
        rows = LogNode.objects.order_by("level", "index").values_list("level", "index", "hash")
        return [(level, index, bytes(hash_)) for level, index, hash_ in rows]

    with transaction.atomic():
        sequencer.nodes_insert(nodes)
        by_unnest = stored()
        transaction.set_rollback(True)
    monkeypatch.setattr(connection, "vendor", "sqlite")  # the fallback, on the same database
    with transaction.atomic():
        sequencer.nodes_insert(nodes)
        by_orm = stored()
        transaction.set_rollback(True)

    assert by_unnest == by_orm
    assert len(by_orm) == len(nodes)


SAMPLE_NODES = [(0, 0), (0, 1), (1, 0), (0, 2**40), (5, 7), (62, 1)]
