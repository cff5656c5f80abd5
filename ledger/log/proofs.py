"""Reads of the global log: checkpoints, inclusion and consistency proofs, in O(log n) reads."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.exceptions import EntryNotSequenced, ProofUnavailable
from ledger.log.checkpoints import checkpoint_note
from ledger.log.merkle import consistency_ranges, inclusion_ranges, needed_nodes, ranges_hashes
from ledger.log.sequencer import nodes_read
from ledger.models import Entry, LogCheckpoint, LogLeaf, LogState


def log_size() -> int:
    """How many entries the log holds (without waiting for a running sequencer)."""
    return LogState.objects.filter(pk=1).values_list("tree_size", flat=True).first() or 0


def checkpoint_at(*, tree_size: int | None = None) -> LogCheckpoint | None:
    """The checkpoint at ``tree_size``, or the latest; None when there is none."""
    checkpoints = LogCheckpoint.objects.order_by("-tree_size")
    if tree_size is not None:
        checkpoints = checkpoints.filter(tree_size=tree_size)
    return checkpoints.first()


def checkpoint_served(checkpoint: LogCheckpoint) -> str:
    """The checkpoint note with the cosignatures the witnesses sent for it."""
    return checkpoint_note(checkpoint, list(checkpoint.cosignatures.order_by("id")))


@dataclass(frozen=True, slots=True)
class InclusionProof:
    log_index: int
    tree_size: int
    entry_hash: str
    proof: list[bytes]
    checkpoint: str | None  # the signed checkpoint of tree_size, if one was signed at that size


def inclusion_proof(*, entry: Entry, tree_size: int | None = None) -> InclusionProof:
    """The proof that ``entry`` is in the tree of ``tree_size`` (default: latest checkpoint).

    Four reads: the leaf, the checkpoint, the nodes, the cosignatures (round trips, not
    hashing, are what a proof costs; profiled).

    :raises EntryNotSequenced: the entry has no place in the log yet.
    :raises ProofUnavailable: the tree of ``tree_size`` is larger than the log or does not
        reach the entry yet.
    """
    leaf = LogLeaf.objects.filter(entry=entry).values_list("log_index", flat=True).first()
    if leaf is None:
        raise EntryNotSequenced("The entry is not in the log yet; retry in a second.")
    checkpoint = checkpoint_at(tree_size=tree_size)
    size = tree_size if tree_size is not None else checkpoint.tree_size if checkpoint else 0
    # A signed checkpoint's tree is in the log: the log's size matters only for unsigned sizes.
    if not leaf < size or (checkpoint is None and size > log_size()):
        raise ProofUnavailable(
            f"Entry {leaf} of the log is not in a tree of size {size} (the log holds"
            f" {log_size()} entries)."
        )
    ranges = inclusion_ranges(leaf, size)
    proof = ranges_hashes(ranges, nodes_read(needed_nodes(ranges)))
    served = checkpoint_served(checkpoint) if checkpoint else None
    return InclusionProof(leaf, size, entry.hash, proof, served)


def consistency_proof(*, first: int, second: int) -> list[bytes]:
    """The proof that the tree of ``second`` entries extends the tree of ``first``.

    :raises ProofUnavailable: unless 0 < first <= second <= the log's size.
    """
    if not 0 < first <= second <= log_size():
        raise ProofUnavailable(
            f"No consistency proof from {first} to {second}: sizes must be 0 < first <= second"
            f" <= {log_size()}."
        )
    ranges = consistency_ranges(first, second)
    return ranges_hashes(ranges, nodes_read(needed_nodes(ranges)))
