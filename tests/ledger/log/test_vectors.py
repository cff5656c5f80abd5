"""The Merkle and signed-note code against independent vectors (../shared/formats/rfc6962-merkle,
read as they are): every proof file verifies or fails exactly as it says; the C2SP example note
verifies with its published key."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger.log.merkle import root_of_leaves
from ledger.verify import (
    EMPTY_ROOT,
    VerificationError,
    Verifier,
    checkpoint_parse,
    leaf_hash,
    node_hash,
    note_parse,
    note_verify,
    verify_consistency,
    verify_inclusion,
)
from tests.conftest import shared_format

pytestmark = pytest.mark.sqlite_smoke


def _vectors(kind: str) -> list[Path]:
    return sorted(shared_format("rfc6962-merkle", kind).rglob("*.json"))


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(values: list[str] | None) -> list[bytes]:
    return [_b64(v) for v in values or []]


def _reference() -> dict:
    return json.loads(shared_format("rfc6962-merkle", "reference.json").read_text())


def test_every_inclusion_vector_verifies_or_fails_as_it_says() -> None:
    paths = _vectors("inclusion")
    assert len(paths) > 40
    for path in paths:
        case = json.loads(path.read_text())
        try:
            verify_inclusion(
                index=case["leafIdx"],
                size=case["treeSize"],
                leaf=_b64(case["leafHash"]),
                proof=_proof(case["proof"]),
                root=_b64(case["root"]),
            )
            failed = False
        except VerificationError:
            failed = True
        assert failed == case["wantErr"], f"{path}: {case['desc']}"


def test_every_consistency_vector_verifies_or_fails_as_it_says() -> None:
    paths = _vectors("consistency")
    assert len(paths) > 40
    for path in paths:
        case = json.loads(path.read_text())
        try:
            verify_consistency(
                size1=case["size1"],
                size2=case["size2"],
                proof=_proof(case["proof"]),
                root1=_b64(case["root1"]),
                root2=_b64(case["root2"]),
            )
            failed = False
        except VerificationError:
            failed = True
        assert failed == case["wantErr"], f"{path}: {case['desc']}"


def test_hasher_vectors() -> None:
    for vector in _reference()["hasher_vectors"]:
        if vector["op"] == "empty_root":
            got = EMPTY_ROOT
        elif vector["op"] == "leaf":
            got = leaf_hash(bytes.fromhex(vector["input_hex"]))
        else:
            got = node_hash(bytes.fromhex(vector["left_hex"]), bytes.fromhex(vector["right_hex"]))
        assert got.hex() == vector["want_hex"], vector["desc"]


def test_roots_match_the_reference_for_sizes_0_to_8() -> None:
    reference = _reference()
    leaves = [leaf_hash(bytes.fromhex(x)) for x in reference["leaf_inputs_hex"]]
    roots = reference["root_hashes_hex_by_tree_size"]
    assert len(roots) == 9
    for size, want in enumerate(roots):
        assert root_of_leaves(leaves[:size]).hex() == want, size


def test_the_c2sp_example_note_verifies_and_a_flipped_bit_does_not() -> None:
    example = json.loads(shared_format("rfc6962-merkle", "signed-note-example.json").read_text())
    verifier = Verifier.parse(example["vkey"])
    assert verifier.key_id.hex() == "530d903a"
    note = note_parse(example["note"])
    assert note.text == example["signed_text"]
    note_verify(note, verifier)
    forged = note_parse(example["note"].replace("example message", "exemple message"))
    with pytest.raises(VerificationError):
        note_verify(forged, verifier)


def test_the_c2sp_checkpoint_example_parses() -> None:
    example = json.loads(shared_format("rfc6962-merkle", "signed-note-example.json").read_text())
    note = note_parse(example["checkpoint_example_from_tlog-checkpoint.md"]["note"])
    checkpoint = checkpoint_parse(note.text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.text == note.text
