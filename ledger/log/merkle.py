"""RFC 6962 Merkle trees over stored complete subtrees: which nodes a root or a proof needs.

The log stores every *complete* subtree once, as a node keyed by (level, index): the node at
level ``l`` and index ``i`` is the root of leaves ``[i·2^l, (i+1)·2^l)``. Those never change
as the log grows, so they are written once, append-only. Any subtree of an RFC 6962 tree, and
so any root or proof hash, is a fold of at most log2(n) of them (its size's binary digits,
largest first), and a proof needs at most one such incomplete subtree: roots and proofs take
O(log n) node reads, never a rebuild. Checking proofs is ``ledger.verify``'s job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ledger.verify import EMPTY_ROOT, node_hash

NodeKey = tuple[int, int]  # (level, index)
Range = tuple[int, int]  # leaves [start, end)


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (size > 1): RFC 6962's k."""
    return 1 << ((size - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[NodeKey]:
    """The complete subtrees that make up leaves [start, end), largest first.

    ``start`` must be aligned to the largest of them, as every subtree of an RFC 6962 tree is.
    """
    keys = []
    while start < end:
        level = (end - start).bit_length() - 1
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a subtree from its complete subtrees' hashes, largest first."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes make the inclusion proof of leaf ``index`` in a tree of
    ``size``, in proof order (RFC 9162 section 2.1.3.1, PATH)."""
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def consistency_ranges(size1: int, size2: int) -> list[Range]:
    """The subtrees whose hashes make the consistency proof from ``size1`` to ``size2``
    (0 < size1 <= size2), in proof order (RFC 9162 section 2.1.4.1, SUBPROOF)."""
    ranges: list[Range] = []
    start, end, m, whole = 0, size2, size1, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:
        ranges.append((start, end))
    return ranges[::-1]


def needed_nodes(ranges: Iterable[Range]) -> set[NodeKey]:
    return {key for start, end in ranges for key in range_nodes(start, end)}


def ranges_hashes(ranges: Sequence[Range], nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """Each range's hash from the stored nodes read for it (``needed_nodes``)."""
    return [fold([nodes[key] for key in range_nodes(start, end)]) for start, end in ranges]


@dataclass(slots=True)
class Frontier:
    """The right edge of a tree: the complete subtrees of its size's binary digits (at most
    64), enough to append leaves and to compute the root without reading anything else."""

    size: int
    nodes: list[tuple[NodeKey, bytes]]  # largest first, as range_nodes(0, size) lists them

    @classmethod
    def empty(cls) -> Frontier:
        return cls(0, [])

    def root(self) -> bytes:
        return fold([h for _, h in self.nodes])

    def append(self, leaf: bytes, on_node: Callable[[NodeKey, bytes], None]) -> None:
        """Add a leaf hash; ``on_node`` gets every complete subtree this completes, leaf first."""
        key, hash_ = (0, self.size), leaf
        on_node(key, hash_)
        while self.nodes and self.nodes[-1][0][0] == key[0]:
            (level, index), left = self.nodes.pop()
            key, hash_ = (level + 1, index >> 1), node_hash(left, hash_)
            on_node(key, hash_)
        self.nodes.append((key, hash_))
        self.size += 1


def root_of_leaves(leaves: Sequence[bytes]) -> bytes:
    """The root over ``leaves`` (leaf hashes), in memory: for tests and for audits."""
    frontier = Frontier.empty()
    for leaf in leaves:
        frontier.append(leaf, lambda key, hash_: None)
    return frontier.root()
