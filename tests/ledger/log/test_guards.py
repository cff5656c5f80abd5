"""The log's rows are append-only in the database; cosignatures are stored only once verified."""

from __future__ import annotations

import time

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from ledger.log.checkpoints import witness_register
from ledger.log.notes import Signer
from ledger.log.proofs import checkpoint_at
from ledger.log.sequencer import log_sequence_all
from ledger.models import Cosignature
from ledger.services import entry_append
from ledger.verify import ALG_COSIGNATURE, note_parse
from tests.api.conftest import signed_client
from tests.conftest import order_placed

pytestmark = pytest.mark.django_db


@pytest.fixture
def sequenced(merchant, marketplace, now):
    for n in range(3):
        entry_append(
            source=marketplace.code, merchant_id=merchant.pk, event=order_placed(f"G-{n}"), now=now
        )
    log_sequence_all(now=now)


@pytest.mark.sqlite_smoke
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_logleaf SET log_index = log_index + 100",
        "DELETE FROM ledger_logleaf",
        "UPDATE ledger_lognode SET hash = hash",
        "DELETE FROM ledger_lognode",
        "UPDATE ledger_logcheckpoint SET note = 'forged'",
        "DELETE FROM ledger_logcheckpoint",
    ],
)
def test_log_rows_refuse_update_and_delete(sequenced, statement) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)


@pytest.mark.postgres
def test_negative_control_without_the_trigger_a_leaf_can_be_moved(sequenced) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE wants no pending FK checks
        cursor.execute("ALTER TABLE ledger_logleaf DISABLE TRIGGER USER")
        cursor.execute("UPDATE ledger_logleaf SET log_index = log_index + 100")
        assert cursor.rowcount == 3
        cursor.execute("ALTER TABLE ledger_logleaf ENABLE TRIGGER USER")


def test_a_cosignature_is_stored_once_and_only_when_it_verifies(sequenced, marketplace) -> None:
    api = signed_client(marketplace)
    witness = Signer.generate("market.example/w", ALG_COSIGNATURE)
    stranger = Signer.generate("market.example/w", ALG_COSIGNATURE)  # same name, other key
    witness_register(name=witness.name, vkey=witness.verifier.vkey, party="m", now=timezone.now())
    text = note_parse(checkpoint_at().note).text
    good = witness.cosign(text, 1_790_000_000).line

    def post(tree_size: int, line: str, timestamp: int | None = None):
        body = {"tree_size": tree_size, "cosignature": line}
        return api.post("/api/v1/checkpoint/cosignatures", body, timestamp=timestamp)

    assert post(3, stranger.cosign(text, 1_790_000_000).line).status_code == 422
    assert post(3, witness.cosign(text.replace("\n3\n", "\n4\n"), 1).line).status_code == 422
    assert post(99, good).status_code == 422
    stamp = int(time.time())
    created = post(3, good, stamp)
    assert created.status_code == 201, created.content
    assert created.json()["witness"] == "market.example/w"
    # A second sending, signed at another second (the same stamp would be a replayed signature).
    assert post(3, good, stamp - 1).status_code == 201
    assert Cosignature.objects.count() == 1
    assert api.get("/api/v1/checkpoint").content.decode().endswith(good)
