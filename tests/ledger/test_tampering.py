"""Tampering behind the triggers' back is caught: verify_ledger exits 1 naming the broken seq."""

from __future__ import annotations

import hashlib

import pytest
from django.core.management import call_command
from django.db import connection

from ledger.canonical import canonical_json
from ledger.models import Entry
from ledger.services import entry_append
from tests.conftest import order_placed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def chain(merchant, make_merchant, marketplace, now):
    """Ten entries on the victim's chain and a few on a bystander's, which must stay intact."""
    bystander = make_merchant()
    for n in range(10):
        entry_append(
            source=marketplace.code, merchant_id=merchant.pk, event=order_placed(f"V-{n}"), now=now
        )
    for n in range(3):
        entry_append(
            source=marketplace.code, merchant_id=bystander.pk, event=order_placed(f"B-{n}"), now=now
        )
    return merchant


def _as_superuser(*statements: tuple[str, list[object]]) -> None:
    """Run ``statements`` with the append-only triggers switched off, as only a superuser can."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE wants no pending FK checks
        cursor.execute("ALTER TABLE ledger_entry DISABLE TRIGGER USER")
        for sql, params in statements:
            cursor.execute(sql, params)
        cursor.execute("ALTER TABLE ledger_entry ENABLE TRIGGER USER")


def _verify(capsys, *args: str) -> tuple[int, str]:
    try:
        call_command("verify_ledger", *args)
    except SystemExit as exit_:
        return int(exit_.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().out


def test_intact_chain_verifies(chain, capsys) -> None:
    code, output = _verify(capsys)
    assert code == 0
    assert "OK: 2 chain(s), 13 entries intact" in output


def test_one_changed_byte_is_named(chain, capsys) -> None:
    body = bytes(Entry.objects.get(chain=chain.pk, seq=4).body)
    forged = body.replace(b'"100.00"', b'"900.00"')
    assert len(forged) == len(body) and forged != body
    _as_superuser(
        ("UPDATE ledger_entry SET body = %s WHERE chain_id = %s AND seq = 4", [forged, chain.pk])
    )
    code, output = _verify(capsys)
    assert code == 1
    assert f"merchant {chain.public_id} seq 4: body does not hash" in output


def test_a_changed_column_copy_is_named(chain, capsys) -> None:
    """The queryable columns are copies of the body, occurred_at included: the body wins."""
    _as_superuser(
        (
            "UPDATE ledger_entry SET occurred_at = occurred_at - interval '1 day'"
            " WHERE chain_id = %s AND seq = 5",
            [chain.pk],
        )
    )
    code, output = _verify(capsys)
    assert code == 1
    assert f"merchant {chain.public_id} seq 5: queryable columns differ from the body" in output


def test_deleted_entry_is_named(chain, capsys) -> None:
    _as_superuser(
        (
            "DELETE FROM ledger_order WHERE entry_id IN"
            " (SELECT id FROM ledger_entry WHERE chain_id = %s AND seq = 6)",
            [chain.pk],
        ),
        ("DELETE FROM ledger_entry WHERE chain_id = %s AND seq = 6", [chain.pk]),
    )
    code, output = _verify(capsys)
    assert code == 1
    assert f"merchant {chain.public_id} seq 6: entry missing" in output


def test_swapped_seqs_are_named(chain, capsys) -> None:
    swap = "UPDATE ledger_entry SET seq = %s WHERE chain_id = %s AND seq = %s"
    _as_superuser(
        (swap, [1000, chain.pk, 7]), (swap, [7, chain.pk, 8]), (swap, [8, chain.pk, 1000])
    )
    code, output = _verify(capsys)
    assert code == 1
    assert f"merchant {chain.public_id} seq 7: body says seq 8" in output


def test_forged_entry_is_named(chain, capsys) -> None:
    """A well-formed entry appended at the end behind the service's back: the head disowns it."""
    last = Entry.objects.get(chain=chain.pk, seq=10)
    envelope = {
        "v": 1,
        "chain": chain.public_id,
        "seq": 11,
        "prev": last.hash,
        "type": "payout.settled",
        "source": last.source,
        "ref": "FORGED",
        "occurred_at": "2026-10-02T00:00:00.000000Z",
        "recorded_at": "2026-10-02T00:00:00.000000Z",
        "data": {"amount": "5000.00", "currency": "EUR", "settled_on": "2026-10-02"},
    }
    body = canonical_json(envelope)
    _as_superuser(
        (
            "INSERT INTO ledger_entry (chain_id, seq, type, source, external_ref, idempotency_key,"
            " request_hash, occurred_at, recorded_at, prev_hash, hash, body)"
            " VALUES (%s, 11, 'payout.settled', %s, 'FORGED', 'forged', %s,"
            " '2026-10-02T00:00:00Z', '2026-10-02T00:00:00Z', %s, %s, %s)",
            [chain.pk, last.source, "0" * 64, last.hash, hashlib.sha256(body).hexdigest(), body],
        )
    )
    code, output = _verify(capsys)
    assert code == 1
    assert f"merchant {chain.public_id} seq 11: entry beyond the chain head" in output


def test_verify_one_merchant_only(chain, capsys) -> None:
    code, output = _verify(capsys, "--merchant", chain.public_id)
    assert code == 0
    assert "1 chain(s), 10 entries intact" in output
