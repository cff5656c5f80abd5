"""Domain errors of the ledger. One base class; the API maps each to a 4xx problem document."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ledger.locks import LockedChain


class LedgerError(Exception):
    """Base class for every refusal the ledger makes."""

    code = "ledger_error"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field, located by an RFC 6901 JSON pointer."""

    pointer: str
    message: str


def _relocate(errors: list[FieldError], pointers: Sequence[str]) -> list[FieldError]:
    """Map "/<index>/rest" pointers from a batch onto where each item sits in a request."""
    moved = []
    for error in errors:
        index, _, rest = error.pointer.removeprefix("/").partition("/")
        if index.isdigit() and int(index) < len(pointers):
            moved.append(
                FieldError(pointers[int(index)] + ("/" + rest if rest else ""), error.message)
            )
        else:
            moved.append(error)
    return moved


class EventInvalid(LedgerError):
    """An event failed validation; ``errors`` says which fields and why."""

    code = "validation_error"

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.pointer or '/'}: {e.message}" for e in errors))

    def prefixed(self, prefix: str) -> EventInvalid:
        """The same errors located under ``prefix`` (e.g. "/events/3")."""
        return EventInvalid([FieldError(prefix + e.pointer, e.message) for e in self.errors])

    def relocated(self, pointers: Sequence[str]) -> EventInvalid:
        return EventInvalid(_relocate(self.errors, pointers))


class IdempotencyKeyReused(LedgerError):
    """The idempotency key was already used for a different event."""

    code = "idempotency_key_reused"

    def __init__(self, *, source: str, idempotency_key: str) -> None:
        self.source = source
        self.idempotency_key = idempotency_key
        super().__init__(
            f"Idempotency key '{idempotency_key}' from '{source}' was already used for a"
            " different event; nothing was written."
        )


class EventConflict(LedgerError):
    """The event contradicts what the chain already holds (a second order with the same ref,
    a credit note for an unknown invoice, ...). Nothing of the request was written."""

    code = "event_conflict"

    def __init__(self, pointer: str, message: str) -> None:
        self.errors = [FieldError(pointer, message)]
        super().__init__(f"{pointer or '/'}: {message}")

    def prefixed(self, prefix: str) -> EventConflict:
        error = self.errors[0]
        return EventConflict(prefix + error.pointer, error.message)

    def relocated(self, pointers: Sequence[str]) -> EventConflict:
        error = _relocate(self.errors, pointers)[0]
        return EventConflict(error.pointer, error.message)


class ProjectionRowRefused(Exception):
    """A batched projection insert hit a unique constraint. Internal: the append is retried
    row by row to name the event that repeats a ref (then an EventConflict)."""


class EarlierEntry(NamedTuple):
    """An entry that holds an idempotency key a write came with: what its receipt says, and
    the hash of the request it answered."""

    seq: int
    key: str
    request_hash: str
    merchant: str
    hash: str
    ref: str
    type: str


class KeysUsedBefore(Exception):
    """Entries already hold some idempotency keys of a write, so it wrote nothing. Internal:
    the append answers those events with the earlier receipts (or refuses a key used for
    another event) and writes the rest."""

    def __init__(self, earlier: list[EarlierEntry]) -> None:
        self.earlier = earlier
        super().__init__(f"{len(earlier)} idempotency key(s) used before")


class HeadMoved(Exception):
    """A compared write found its chain past the head its entries were built on, so it wrote
    nothing. Internal: ``locked`` is the chain's head as it stands, which the statement locked
    (until the transaction ends; at once released outside one), or None if it has no chain."""

    def __init__(self, locked: LockedChain | None) -> None:
        self.locked = locked
        super().__init__("the chain has moved on")


class CosignatureRefused(LedgerError):
    """A witness's cosignature that names no checkpoint, no registered witness, or does not
    verify; nothing was stored."""

    code = "cosignature_refused"


class ProofUnavailable(LedgerError):
    """No proof between these tree sizes or for this entry at this size."""

    code = "proof_unavailable"


class EntryNotSequenced(ProofUnavailable):
    """The entry is committed but the sequencer has not given it its place yet (within ~1 s)."""

    code = "entry_not_sequenced"
