"""The global log over the API: checkpoints verify with the published key, inclusion proofs for
10,000 random (tree size, index) pairs and consistency proofs for 1,000 size pairs verify, and
any flipped bit of a proof, a root or a signature makes them fail."""

from __future__ import annotations

import base64
import random
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone

from ledger.log.merkle import Frontier
from ledger.log.sequencer import log_sequence, log_sequence_all
from ledger.models import Entry, LogLeaf
from ledger.services import NewEntry, entries_append
from ledger.verify import (
    VerificationError,
    Verifier,
    checkpoint_parse,
    leaf_hash,
    note_parse,
    note_verify,
    verify_consistency,
    verify_inclusion,
)
from tests.api.conftest import SignedClient, merchant_signed_client, seller_id, signed_client
from tests.conftest import order_placed

pytestmark = pytest.mark.django_db
ENTRIES = 240


def _flips(value: bytes) -> list[bytes]:
    """``value`` with each of its bits flipped in turn."""
    return [
        value[:i] + bytes([value[i] ^ (1 << bit)]) + value[i + 1 :]
        for i in range(len(value))
        for bit in range(8)
    ]


@pytest.fixture
def api(marketplace) -> SignedClient:
    return signed_client(marketplace)


@pytest.fixture
def log(make_merchant, marketplace, now):
    """ENTRIES entries over two merchants, sequenced in rounds of varying size; the roots of
    every tree size, computed here from the entries."""
    merchants = [make_merchant(), make_merchant()]
    rng = random.Random(12)
    for n in range(0, ENTRIES, 40):
        batch = [
            NewEntry(merchant_id=merchants[i % 2].pk, event=order_placed(f"O-{n + i}"))
            for i in range(40)
        ]
        entries_append(source=marketplace.code, entries=batch, now=now)
        log_sequence(now=now, limit=rng.randint(7, 60))
    log_sequence_all(now=now)
    frontier = Frontier.empty()
    roots = [frontier.root()]
    hashes = dict(Entry.objects.values_list("id", "hash"))
    for _, entry_id in LogLeaf.objects.order_by("log_index").values_list("log_index", "entry_id"):
        frontier.append(leaf_hash(bytes.fromhex(hashes[entry_id])), lambda k, h: None)
        roots.append(frontier.root())
    return merchants, roots


def _inclusion(api, merchant, seq: int, size: int | None = None):
    query = {"merchant": seller_id(merchant), "seq": seq}
    if size is not None:
        query["tree_size"] = size
    return api.get(f"/api/v1/proofs/inclusion?{urlencode(query)}")


def _random_pairs(count: int, seed: int) -> list[tuple[int, int]]:
    """``count`` random (tree size, index) pairs, the same ones on every run."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        size = rng.randint(1, ENTRIES)
        pairs.append((size, rng.randrange(size)))
    return pairs


INCLUSION_PAIRS = _random_pairs(10_000, seed=6962)
INCLUSION_PARTS = 4  # a test each, so parallel test processes share the 10,000 requests


@pytest.mark.slow
@pytest.mark.parametrize("part", range(INCLUSION_PARTS))
def test_inclusion_proofs_of_10000_random_pairs_verify(api, log, settings, part) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 100_000
    merchants, roots = log
    places = {
        (chain, seq): index
        for index, chain, seq in LogLeaf.objects.values_list(
            "log_index", "entry__chain_id", "entry__seq"
        )
    }
    by_index = {index: key for key, index in places.items()}
    merchant_of = {m.pk: m for m in merchants}
    for size, index in INCLUSION_PAIRS[part::INCLUSION_PARTS]:
        chain, seq = by_index[index]
        response = _inclusion(api, merchant_of[chain], seq, size)
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["log_index"], body["tree_size"]) == (index, size)
        verify_inclusion(
            index=index,
            size=size,
            leaf=leaf_hash(bytes.fromhex(body["hash"])),
            proof=[base64.b64decode(h) for h in body["proof"]],
            root=roots[size],
        )


@pytest.mark.slow
def test_consistency_proofs_of_1000_random_pairs_verify(api, log, settings) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 100_000
    _, roots = log
    rng = random.Random(9162)
    for _ in range(1000):
        first = rng.randint(1, ENTRIES)
        second = rng.randint(first, ENTRIES)
        response = api.get(f"/api/v1/proofs/consistency?first={first}&second={second}")
        assert response.status_code == 200, response.content
        proof = [base64.b64decode(h) for h in response.json()["proof"]]
        verify_consistency(
            size1=first, size2=second, proof=proof, root1=roots[first], root2=roots[second]
        )


def test_any_flipped_bit_of_a_proof_or_root_fails(api, log) -> None:
    merchants, roots = log
    body = _inclusion(api, merchants[1], 50, 201).json()
    index, leaf = body["log_index"], leaf_hash(bytes.fromhex(body["hash"]))
    proof = [base64.b64decode(h) for h in body["proof"]]
    verify_inclusion(index=index, size=201, leaf=leaf, proof=proof, root=roots[201])
    for position, sibling in enumerate(proof):
        for flipped in _flips(sibling):
            forged = [*proof[:position], flipped, *proof[position + 1 :]]
            with pytest.raises(VerificationError):
                verify_inclusion(index=index, size=201, leaf=leaf, proof=forged, root=roots[201])
    for flipped in _flips(roots[201]):
        with pytest.raises(VerificationError):
            verify_inclusion(index=index, size=201, leaf=leaf, proof=proof, root=flipped)
    consistency = api.get("/api/v1/proofs/consistency?first=77&second=201").json()["proof"]
    proof = [base64.b64decode(h) for h in consistency]
    for position, node in enumerate(proof):
        for flipped in _flips(node):
            forged = [*proof[:position], flipped, *proof[position + 1 :]]
            with pytest.raises(VerificationError):
                verify_consistency(
                    size1=77, size2=201, proof=forged, root1=roots[77], root2=roots[201]
                )


def test_the_checkpoint_verifies_with_the_published_key_and_a_flipped_bit_does_not(
    api, log, client: Client
) -> None:
    _, roots = log
    vkey = client.get("/.well-known/chainfin-log-key")
    assert vkey.status_code == 200 and vkey["Content-Type"].startswith("text/plain")
    verifier = Verifier.parse(vkey.content.decode())
    response = api.get("/api/v1/checkpoint")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    note = note_parse(response.content.decode())
    note_verify(note, verifier)
    checkpoint = checkpoint_parse(note.text)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (
        verifier.name,
        ENTRIES,
        roots[ENTRIES],
    )
    [signature] = note.signatures
    for flipped in _flips(signature.signature):
        forged = note_parse(
            note.text + "\n" + type(signature)(signature.name, signature.key_id, flipped).line
        )
        with pytest.raises(VerificationError):
            note_verify(forged, verifier)
    earlier = api.get("/api/v1/checkpoint?tree_size=40")
    assert earlier.status_code in (200, 404)  # only the sizes a round ended at were signed


def test_any_key_reads_checkpoints_but_inclusion_takes_a_marketplace_key(api, log) -> None:
    merchants, _ = log
    own = merchant_signed_client(merchants[0])
    assert own.get("/api/v1/checkpoint").status_code == 200
    assert own.get("/api/v1/proofs/consistency?first=1&second=2").status_code == 200
    assert _inclusion(own, merchants[0], 1).status_code == 403
    assert Client().get("/api/v1/checkpoint").status_code == 401


def test_an_entry_not_yet_sequenced_is_409_and_its_receipt_links_to_the_proof(api, merchant):
    event = {
        "type": "order.placed",
        "merchant": seller_id(merchant),
        "ref": "LATE-1",
        "occurred_at": "2026-09-30T12:00:00Z",
        "data": {"currency": "EUR", "amount": "10.00"},
    }
    receipt = api.post("/api/v1/events", {"events": [event]}).json()["receipts"][0]
    link = receipt["log"]
    assert link == f"/api/v1/proofs/inclusion?merchant={seller_id(merchant)}&seq=1"
    pending = api.get(link)
    assert pending.status_code == 409
    assert pending.json()["code"] == "entry_not_sequenced"
    log_sequence_all(now=timezone.now())
    body = api.get(link).json()
    assert (body["log_index"], body["tree_size"], body["proof"]) == (0, 1, [])
    assert body["checkpoint"].startswith("chainfin.test/log\n1\n")


def test_a_checkpoint_not_signed_is_404_saying_which(api, log) -> None:
    missing = api.get(f"/api/v1/checkpoint?tree_size={ENTRIES + 1}")
    assert missing.status_code == 404
    assert missing.json()["title"] == f"No checkpoint at tree size {ENTRIES + 1}."


def test_before_the_first_checkpoint_the_latest_is_404_saying_none_yet(api) -> None:
    # A witness started with the bank (make demo) asks before the first round has ended.
    none = api.get("/api/v1/checkpoint")
    assert (none.status_code, none.json()["code"]) == (404, "checkpoint_not_found")
    assert none.json()["title"] == "No checkpoint yet."


def test_sizes_outside_the_log_are_refused(api, log) -> None:
    merchants, _ = log
    assert api.get("/api/v1/proofs/consistency?first=0&second=2").status_code == 422
    assert api.get("/api/v1/proofs/consistency?first=3&second=2").status_code == 422
    too_big = f"/api/v1/proofs/consistency?first=1&second={ENTRIES + 1}"
    assert api.get(too_big).status_code == 422
    assert api.get("/api/v1/proofs/consistency?first=1").status_code == 422
    last = LogLeaf.objects.get(log_index=ENTRIES - 1).entry
    chain_owner = next(m for m in merchants if m.pk == last.chain_id)
    assert _inclusion(api, chain_owner, last.seq, ENTRIES - 1).status_code == 422
