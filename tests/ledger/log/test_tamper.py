"""The issue's attacker: a database superuser switches the triggers off, changes one order's
amount, re-hashes that entry and the whole tail of its chain and fixes the head. The chain
verifier alone says intact (the negative control); the log's audit in verify_ledger, the
offline verifier with the signed checkpoint, and a witness holding an earlier checkpoint do not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from ledger.canonical import canonical_json
from ledger.log.audit import log_audit
from ledger.log.bundles import bundle_export
from ledger.log.checkpoints import log_verifier, witness_register
from ledger.log.merkle import Frontier
from ledger.log.notes import Signer
from ledger.log.sequencer import log_sequence_all
from ledger.log.witness import WitnessAlarm, witness_round
from ledger.models import Chain, Entry, LogLeaf
from ledger.services import entry_append, ledger_verification_run
from ledger.verification import ledger_verify
from ledger.verify import ALG_COSIGNATURE, bundle_verify, leaf_hash
from tests.conftest import order_placed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


class ClientAdapter:
    """The witness's view of the API, through the Django test client with a marketplace key."""

    def __init__(self, api) -> None:
        self.api = api

    def get(self, path: str) -> tuple[int, bytes]:
        response = self.api.get(path)
        return response.status_code, response.content

    def post(self, path: str, body: bytes, idempotency_key: str) -> tuple[int, bytes]:
        response = self.api.post(path, body, idempotency_key=idempotency_key)
        return response.status_code, response.content


@pytest.fixture
def api(marketplace):
    from tests.api.conftest import signed_client

    return signed_client(marketplace)


@pytest.fixture
def history(merchant, marketplace, now):
    for n in range(10):
        entry_append(
            source=marketplace.code, merchant_id=merchant.pk, event=order_placed(f"V-{n}"), now=now
        )
    log_sequence_all(now=now)
    return merchant


@pytest.fixture
def witness(db):
    signer = Signer.generate("auditor.example/w1", ALG_COSIGNATURE)
    witness_register(
        name=signer.name, vkey=signer.verifier.vkey, party="an auditor", now=timezone.now()
    )
    return signer


def _superuser(sql: str, params: list[object], tables: tuple[str, ...] = ("ledger_entry",)):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _rewrite_history(merchant, seq: int) -> None:
    """Change entry ``seq``'s amount and re-hash it and every later entry; fix the head."""
    entries = list(Entry.objects.filter(chain=merchant.pk, seq__gte=seq).order_by("seq"))
    prev = entries[0].prev_hash
    for entry in entries:
        envelope = orjson.loads(bytes(entry.body))
        envelope["prev"] = prev
        if entry.seq == seq:
            envelope["data"]["amount"] = "900.00"
        body = canonical_json(envelope)
        digest = hashlib.sha256(body).hexdigest()
        _superuser(
            "UPDATE ledger_entry SET body = %s, hash = %s, prev_hash = %s WHERE id = %s",
            [body, digest, prev, entry.pk],
        )
        prev = digest
    Chain.objects.filter(pk=merchant.pk).update(head_hash=prev)


def _verify_ledger(capsys) -> tuple[int, str]:
    try:
        call_command("verify_ledger")
    except SystemExit as exit_:
        return int(exit_.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().out


def test_the_rewrite_fools_the_chains_but_not_the_log(history, capsys) -> None:
    code, output = _verify_ledger(capsys)
    assert code == 0 and "log of 10 entries matches them and 1 signed checkpoint" in output
    _rewrite_history(history, 4)
    assert ledger_verify().intact  # negative control: the chains alone are fooled
    code, output = _verify_ledger(capsys)
    assert code == 1
    assert "BROKEN: log: log entry 3: the entry no longer hashes to the leaf" in output


def test_a_rewrite_of_the_tree_too_contradicts_the_signed_checkpoint(history) -> None:
    """He rewrites the leaves' nodes as well: the bank's signature over the old root remains."""
    _rewrite_history(history, 4)
    frontier = Frontier.empty()
    nodes: list[tuple[tuple[int, int], bytes]] = []
    for leaf in LogLeaf.objects.order_by("log_index").select_related("entry"):
        frontier.append(
            leaf_hash(bytes.fromhex(leaf.entry.hash)), lambda k, h: nodes.append((k, h))
        )
    for (level, index), hash_ in nodes:
        _superuser(
            "UPDATE ledger_lognode SET hash = %s WHERE level = %s AND index = %s",
            [hash_, level, index],
            ("ledger_lognode",),
        )
    audit = log_audit(verifier=log_verifier())
    assert audit.problem is not None
    assert audit.problem.startswith("checkpoint 10: the signed root is not the root")


def test_an_earlier_runs_head_exposes_a_rewrite_of_everything_signed_since(history, now) -> None:
    run = ledger_verification_run(now=now)
    assert run.outcome == "intact" and run.log_size == 10 and run.log_root
    _rewrite_history(history, 4)
    with connection.cursor() as cursor:  # he even removes the checkpoints the bank signed
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("DELETE FROM ledger_logcheckpoint")
        cursor.execute("RESET session_replication_role")
    audit = log_audit(verifier=log_verifier())
    assert audit.problem is not None and "leaf" in audit.problem


def test_the_offline_verifier_refuses_the_rewritten_entries(history, tmp_path: Path) -> None:
    entries = Entry.objects.filter(chain=history.pk).select_related("chain__merchant")
    before = bundle_export(entries=entries.order_by("seq"))
    holds, fails = bundle_verify(before, log_verifier())
    assert fails == [] and len(holds) == 11
    _rewrite_history(history, 4)
    after = bundle_export(entries=entries.order_by("seq"))
    holds, fails = bundle_verify(after, log_verifier())
    assert [f.split(":")[0] for f in fails] == [f"entry {n}" for n in range(3, 10)]
    assert "inclusion proof does not lead to the root" in fails[0]


def test_a_witness_with_an_earlier_checkpoint_alarms(history, witness, api, tmp_path, now) -> None:
    client, state = ClientAdapter(api), tmp_path / "witness.json"
    seen = witness_round(
        client=client, signer=witness, log_key=log_verifier(), state=state, now=1_790_000_000
    )
    assert seen is not None and seen.size == 10
    served = api.get("/api/v1/checkpoint").content.decode()
    assert "\u2014 auditor.example/w1 " in served  # the checkpoint is served cosigned
    # The attacker rewrites the entries and the whole tree; the log grows and is signed again.
    _rewrite_history(history, 4)
    tables = ("ledger_logleaf", "ledger_lognode")
    _superuser("DELETE FROM ledger_lognode", [], tables)
    frontier = Frontier.empty()
    for leaf in LogLeaf.objects.order_by("log_index").select_related("entry"):
        frontier.append(
            leaf_hash(bytes.fromhex(leaf.entry.hash)),
            lambda k, h: _superuser(
                "INSERT INTO ledger_lognode (level, index, hash) VALUES (%s, %s, %s)",
                [k[0], k[1], h],
                tables,
            ),
        )
    entry_append(source="attacker", merchant_id=history.pk, event=order_placed("V-10"), now=now)
    log_sequence_all(now=now)
    with pytest.raises(WitnessAlarm, match="tree 11 does not extend tree 10"):
        witness_round(
            client=client, signer=witness, log_key=log_verifier(), state=state, now=1_790_000_100
        )
    assert json.loads(state.read_text())["size"] == 10  # it stays on the last good checkpoint
