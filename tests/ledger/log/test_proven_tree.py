"""The offline verifier's memoised proof check (``ProvenTree``) says exactly what
``verify_inclusion`` says, proof for proof, however much of the tree earlier proofs proved."""

from __future__ import annotations

import hashlib
import random

import pytest

from ledger.log.merkle import Frontier, NodeKey, inclusion_ranges, ranges_hashes
from ledger.verify import ProvenTree, VerificationError, leaf_hash, verify_inclusion


def tree(size: int) -> tuple[list[bytes], dict[NodeKey, bytes], bytes]:
    leaves = [leaf_hash(hashlib.sha256(str(n).encode()).digest()) for n in range(size)]
    nodes: dict[NodeKey, bytes] = {}
    frontier = Frontier.empty()
    for leaf in leaves:
        frontier.append(leaf, nodes.__setitem__)
    return leaves, nodes, frontier.root()


def holds(check: ProvenTree, index: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    try:
        verify_inclusion(index=index, size=check.size, leaf=leaf, proof=proof, root=root)
        slow = True
    except VerificationError:
        slow = False
    try:
        check.verify(index=index, leaf=leaf, proof=proof)
        fast = True
    except VerificationError:
        fast = False
    assert fast is slow, (index, check.size)
    return fast


def flipped(proof: list[bytes], rng: random.Random) -> list[bytes]:
    at = rng.randrange(len(proof))
    hash_ = bytearray(proof[at])
    hash_[rng.randrange(len(hash_))] ^= 1 << rng.randrange(8)
    return [*proof[:at], bytes(hash_), *proof[at + 1 :]]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 100, 257])
def test_every_proof_holds_and_every_forgery_fails_as_the_plain_check_says(size: int) -> None:
    leaves, nodes, root = tree(size)
    check = ProvenTree(size, root)
    rng = random.Random(size)
    order = list(range(size))
    rng.shuffle(order)
    proofs = {i: ranges_hashes(inclusion_ranges(i, size), nodes) for i in range(size)}

    for i in order:
        assert holds(check, i, leaves[i], proofs[i], root)
    # Now nearly every node is proven: forgeries must still fail, at every index.
    for i in order:
        if proofs[i]:
            assert not holds(check, i, leaves[i], flipped(proofs[i], rng), root)
        assert not holds(check, i, leaf_hash(b"forged"), proofs[i], root)
        assert not holds(check, (i + 1) % size, leaves[i], proofs[i], root) or size == 1
        assert holds(check, i, leaves[i], proofs[i], root)  # and the true proof still holds
    with pytest.raises(VerificationError):
        check.verify(index=size, leaf=leaves[0], proof=proofs[0])


def test_a_forged_proof_proves_nothing_for_later_ones() -> None:
    leaves, nodes, root = tree(100)
    check = ProvenTree(100, root)
    proof = ranges_hashes(inclusion_ranges(10, 100), nodes)
    with pytest.raises(VerificationError):
        check.verify(index=10, leaf=leaves[10], proof=flipped(proof, random.Random(1)))

    assert check.known == {check.top: root}
