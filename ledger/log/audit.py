"""Auditing the global log against the entries: the stored tree, every checkpoint, earlier runs.

A database superuser can switch the triggers off and rewrite an entry, its chain's tail and
head so that every chain verifies again. What he cannot do is make the rewritten entries hash
to the leaves the bank already signed: this recomputes every leaf from the entries' stored
hashes, in log order and constant memory, and holds to the result the stored level-0 nodes,
the root of every signed checkpoint (so each is consistent with the next, as they are all
prefixes of one recomputed tree), the roots that earlier verification runs recorded, and the
stored tree's current root. Witnesses and offline verifiers hold copies the database cannot
reach; this check is what the bank itself sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection

from ledger.log.merkle import Frontier
from ledger.log.sequencer import frontier_read
from ledger.models import LedgerVerification, LogCheckpoint, LogState
from ledger.verify import VerificationError, Verifier, leaf_hash, note_parse, note_verify

_PAGE = 5000
_ROWS = (
    "SELECT l.log_index, e.hash, n.hash FROM ledger_logleaf l"
    " JOIN ledger_entry e ON e.id = l.entry_id"
    " LEFT JOIN ledger_lognode n ON n.level = 0 AND n.index = l.log_index"
    " WHERE l.log_index >= %s AND l.log_index < %s ORDER BY l.log_index LIMIT %s"
)


@dataclass(frozen=True, slots=True)
class LogAudit:
    size: int
    root: bytes
    checkpoints: int
    problem: str | None

    @property
    def intact(self) -> bool:
        return self.problem is None


def _leaves(size: int) -> Iterator[tuple[int, str, bytes | None]]:
    start = 0
    while start < size:
        with connection.cursor() as cursor:
            cursor.execute(_ROWS, [start, size, _PAGE])
            rows = cursor.fetchall()
        if not rows:
            return
        for index, entry_hash, stored in rows:
            yield index, entry_hash, None if stored is None else bytes(stored)
        start = rows[-1][0] + 1


def log_audit(*, verifier: Verifier) -> LogAudit:
    """Recompute the log from the entries and compare everything stored or signed with it.

    ``verifier`` is the bank's log key: every checkpoint must carry its valid signature.
    """
    size = LogState.objects.filter(pk=1).values_list("tree_size", flat=True).first() or 0
    signed = {
        tree_size: (bytes(root), note)
        for tree_size, root, note in LogCheckpoint.objects.filter(tree_size__lte=size).values_list(
            "tree_size", "root_hash", "note"
        )
    }
    seen = {
        run_size: bytes.fromhex(run_root)
        for run_size, run_root in LedgerVerification.objects.filter(
            log_size__isnull=False, log_size__lte=size
        ).values_list("log_size", "log_root")
    }
    frontier = Frontier.empty()

    def broken(problem: str) -> LogAudit:
        return LogAudit(frontier.size, frontier.root(), len(signed), problem)

    for index, entry_hash, stored in _leaves(size):
        if index != frontier.size:
            return broken(f"log entry {frontier.size} is missing")
        leaf = leaf_hash(bytes.fromhex(entry_hash))
        if stored != leaf:
            return broken(
                f"log entry {index}: the entry no longer hashes to the leaf the log holds"
                " (the entry was rewritten after it was sequenced)"
            )
        frontier.append(leaf, lambda key, hash_: None)
        if frontier.size in signed:
            root, note = signed[frontier.size]
            try:
                note_verify(note_parse(note), verifier)
            except VerificationError as exc:
                return broken(f"checkpoint {frontier.size}: {exc}")
            if root != frontier.root():
                return broken(
                    f"checkpoint {frontier.size}: the signed root is not the root of the"
                    " entries (history was rewritten after it was signed)"
                )
        if seen.get(frontier.size, frontier.root()) != frontier.root():
            return broken(
                f"tree {frontier.size}: an earlier verification saw another root (history was"
                " rewritten since)"
            )
    if frontier.size != size:
        return broken(f"log entry {frontier.size} is missing")
    if size and frontier_read(size).root() != frontier.root():
        return broken("the stored tree's root is not the root of the entries")
    return LogAudit(size, frontier.root(), len(signed), None)
