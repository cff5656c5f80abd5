"""Appending evidence to merchants' chains."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger.canonical import canonical_json_embedding, entry_hash
from ledger.events import ValidEvent, format_timestamp
from ledger.exceptions import (
    EarlierEntry,
    EventConflict,
    EventInvalid,
    FieldError,
    HeadMoved,
    IdempotencyKeyReused,
    KeysUsedBefore,
    LedgerError,
    ProjectionRowRefused,
)
from ledger.locks import (
    LockedChain,
    chains_lock,
    head_known,
    heads_remember,
    remembered_head_found,
    remembered_heads_pay,
)
from ledger.log.audit import log_audit
from ledger.log.checkpoints import log_verifier
from ledger.models import Chain, Entry, LedgerVerification
from ledger.projections.registry import project, projected, rows_ahead, rows_only
from ledger.unsaved import unsaved
from ledger.verification import ledger_checks_problem, ledger_verify
from ledger.writer import entries_write
from merchants.identifiers import tax_id_is_own

ENVELOPE_VERSION = 1
_IDEMPOTENCY_CONSTRAINT = "entry_idempotency_key_unique"


@dataclass(frozen=True, slots=True)
class NewEntry:
    """One event to append to ``merchant_id``'s chain.

    ``idempotency_key`` defaults to "<merchant id>:<type>:<ref>": a sender that repeats an
    event gets the original receipt back instead of a second entry, while two merchants may
    both have an invoice "INV-1" (suppliers number their documents independently).
    """

    merchant_id: int
    event: ValidEvent
    idempotency_key: str | None = None

    @property
    def key(self) -> str:
        return self.idempotency_key or f"{self.merchant_id}:{self.event.type}:{self.event.ref}"


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof of an append: where the entry sits in the merchant's chain and its hash."""

    merchant: str
    seq: int
    hash: str
    ref: str
    type: str


def entry_append(
    *,
    source: str,
    merchant_id: int,
    event: ValidEvent,
    now: datetime,
    idempotency_key: str | None = None,
) -> Receipt:
    """Append one event to a merchant's chain and project it, or return the original receipt.

    :raises IdempotencyKeyReused: the key was used before for a different event.
    :raises EventConflict: the event contradicts the chain (a projector refused it).
    :raises EventInvalid: the event lies too far in the future, or names another supplier.
    """
    new = NewEntry(merchant_id=merchant_id, event=event, idempotency_key=idempotency_key)
    return entries_append(source=source, entries=[new], now=now)[0]


def entries_append(*, source: str, entries: Sequence[NewEntry], now: datetime) -> list[Receipt]:
    """Append events, possibly to several merchants' chains, all or nothing, in one transaction.

    Each chain is locked once for the whole batch. Events already appended under the same
    ``(source, idempotency key)`` are not appended again; their original receipts come back in
    place. Receipts are returned in input order. Inside a caller's transaction, a refusal leaves
    that transaction usable, with none of the events written.

    :raises IdempotencyKeyReused: a key was used before for a different event.
    :raises EventConflict: an event contradicts the chain; located under "/<index>".
    :raises EventInvalid: an event lies too far in the future, or an invoice names a supplier tax
        id that is not its merchant's; located under "/<index>".
    """
    if not entries:
        return []  # nothing to lock or write; the SQL below needs at least one chain
    _refuse_future_events(entries, now)
    # Only a projector can fail after entries are written (a refused event, a repeated ref), and
    # only that needs a savepoint in a caller's transaction; without projectors, the append is
    # a lock and one write that stands or falls whole, and spares the savepoint's two round
    # trips, as journal_post does. A database error then dooms the caller's transaction.
    savepoint = projected(new.event.type for new in entries)
    careful = False
    for _ in range(3):
        try:
            return _append(source, entries, now, careful=careful, savepoint=savepoint)
        except ProjectionRowRefused:
            careful = True  # find which event repeats a ref, to name it
        except IntegrityError as exc:
            # A key written meanwhile by a transaction on another chain (its lock is not ours):
            # it has committed now, so the next attempt finds it.
            if not (_undoable(savepoint) and _is_idempotency_conflict(exc)):
                raise
    return _append(source, entries, now, careful=True, savepoint=savepoint)


def _undoable(savepoint: bool) -> bool:
    """Whether a failed attempt can be undone: by its savepoint, or as a whole transaction."""
    return savepoint or not transaction.get_connection().in_atomic_block


def _refuse_future_events(entries: Sequence[NewEntry], now: datetime) -> None:
    latest = now + timedelta(seconds=settings.LEDGER_MAX_CLOCK_SKEW_SECONDS)
    errors = [
        FieldError(f"/{index}/occurred_at", "Lies in the future; evidence records the past.")
        for index, new in enumerate(entries)
        if new.event.occurred_at > latest
    ]
    if errors:
        raise EventInvalid(errors)


def _other_suppliers(
    entries: Sequence[NewEntry], chains: dict[int, LockedChain]
) -> EventInvalid | None:
    """An invoice's supplier is the merchant whose chain it joins: naming another is refused.

    Invoice numbers are unique per supplier, so a marketplace that sent a reseller's or a
    stranger's invoice into a merchant's chain would let one invoice pass for another's.
    """
    errors = []
    for index, new in enumerate(entries):
        named = new.event.data.get("supplier_tax_id")
        if named is None or new.event.type != "invoice.issued":
            continue
        chain = chains[new.merchant_id]
        if not tax_id_is_own(named, own_normalised=chain.tax_id_normalised, country=chain.country):
            errors.append(
                FieldError(
                    f"/{index}/data/supplier_tax_id",
                    "Not this merchant's tax id: the supplier of an invoice is the merchant whose"
                    " chain it joins.",
                )
            )
    return EventInvalid(errors) if errors else None


def _is_idempotency_conflict(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    if diag is not None:  # PostgreSQL names the constraint
        return getattr(diag, "constraint_name", None) == _IDEMPOTENCY_CONSTRAINT
    return "ledger_entry.source, ledger_entry.idempotency_key" in str(exc)


def _request_hash(merchant: str, event: ValidEvent) -> str:
    request = {
        "merchant": merchant,
        "type": event.type,
        "ref": event.ref,
        "occurred_at": event.occurred_at_text,
    }
    return hashlib.sha256(canonical_json_embedding(request, data=event.data_json)).hexdigest()


def _append(
    source: str, entries: Sequence[NewEntry], now: datetime, *, careful: bool, savepoint: bool
) -> list[Receipt]:
    if not careful:
        receipts = _append_unlocked(source, entries, now)
        if receipts is not None:
            return receipts
    undoable = _undoable(savepoint)
    with transaction.atomic(savepoint=savepoint):
        outcome = _append_locked(source, entries, now, careful=careful)
        if isinstance(outcome, LedgerError) and undoable:
            raise outcome  # and undo the attempt: a chain it created for the event, its lock
    if isinstance(outcome, LedgerError):
        # Found before any event was written: raised here, it leaves the caller's transaction
        # usable, as a savepoint would have.
        raise outcome
    return outcome


def _append_unlocked(
    source: str, entries: Sequence[NewEntry], now: datetime
) -> list[Receipt] | None:
    """The append as one statement, in no transaction: a round trip each for BEGIN, the lock
    and COMMIT spared, more than a third of a single append's time on PostgreSQL.

    Only for events of one merchant whose projectors only add rows (nothing runs after the
    write), outside any transaction, on a chain this process last wrote: the entries are built
    on that head and written only if the chain still ends there (ledger/writer.py). None, with
    nothing written, when any of that does not hold, the head is stale twice (the statement
    that finds it stale reads the head as it stands), or a refusal needs confirming on the
    locked head: the locked append then does the work.
    """
    db = transaction.get_connection()
    if (
        db.in_atomic_block
        or not db.get_autocommit()
        or not rows_only(e.event.type for e in entries)
    ):
        return None
    chain = _head_known(entries)
    for _ in range(2):  # the remembered head, then once the head a stale one's statement read
        if chain is None:
            return None
        try:
            outcome = _write(source, entries, now, chain, careful=False, compare=True)
        except HeadMoved as moved:  # its lock ended with the statement
            chain = None if moved.locked is None else {moved.locked.merchant_id: moved.locked}
            continue
        return None if isinstance(outcome, LedgerError) else outcome
    return None


def _head_known(entries: Sequence[NewEntry]) -> dict[int, LockedChain] | None:
    """The head this process last wrote, if the entries are of one merchant's chain and the
    writer can compare it (PostgreSQL)."""
    merchant_ids = {new.merchant_id for new in entries}
    if transaction.get_connection().vendor != "postgresql" or len(merchant_ids) != 1:
        return None
    chain = head_known(merchant_ids.pop())
    return None if chain is None else {chain.merchant_id: chain}


def _append_locked(
    source: str, entries: Sequence[NewEntry], now: datetime, *, careful: bool
) -> list[Receipt] | LedgerError:
    """Lock the chains and write; return the receipts, or the refusal to raise.

    On a head this process last wrote, the write itself takes the lock (ledger/writer.py): one
    statement fewer; if the chain has moved on, that statement locks it and reads its head, and
    the append is built again on that. Only while such heads are mostly found where they were
    left (``remembered_heads_pay``): with four processes on the same merchants most are stale,
    and building twice cost more than the lock statement saved (transfers_bench: 943 against
    1,064 transfers/s).
    """
    known = None if careful else _head_known(entries)
    if known is not None and remembered_heads_pay():
        try:
            outcome = _write(source, entries, now, known, careful=careful, compare=True)
        except HeadMoved as moved:
            remembered_head_found(False)
            if moved.locked is not None:
                locked = {moved.locked.merchant_id: moved.locked}
                return _write(source, entries, now, locked, careful=careful, compare=False)
        else:
            remembered_head_found(True)
            if not isinstance(outcome, LedgerError):
                return outcome
            # Refused on the merchant as remembered, with nothing written: decided again below.
    chains = chains_lock(new.merchant_id for new in entries)
    return _write(source, entries, now, chains, careful=careful, compare=False)


def _write(
    source: str,
    entries: Sequence[NewEntry],
    now: datetime,
    chains: dict[int, LockedChain],
    *,
    careful: bool,
    compare: bool,
) -> list[Receipt] | LedgerError:
    """Build the entries on ``chains``' heads, write and project them; the receipts, or the
    refusal to raise.

    :raises HeadMoved: (``compare``, one chain) the chain no longer ends at its head.
    """
    built_on = replace(next(iter(chains.values()))) if compare else None  # heads move in place
    refused = _other_suppliers(entries, chains)
    if refused is not None:
        return refused
    build = _Build(source, chains, now, entries)
    while True:
        built = build.next_entries()
        if isinstance(built, LedgerError):
            return built
        pairs, positions = built
        # Rows nothing reads before they exist go in with their entries, in the same statement.
        ahead, written = ([], 0) if careful else rows_ahead(pairs)
        try:
            entries_write([e for e, _ in pairs], build.moved(), ahead, built_on=built_on)
        except KeysUsedBefore as found:
            build.found_before(found.earlier)  # nothing was written: build the rest again
            continue
        try:
            project(pairs, careful=careful, rows_written=written)
        except EventConflict as exc:
            raise exc.relocated([f"/{index}" for index in positions]) from None
        heads_remember(chains.values())
        return build.receipts()


class _Build:
    """The entries of an append, built on the locked heads, and the receipts of its events."""

    def __init__(
        self,
        source: str,
        chains: dict[int, LockedChain],
        now: datetime,
        entries: Sequence[NewEntry],
    ) -> None:
        self.source, self.chains, self.now, self.entries = source, chains, now, entries
        self.now_text = format_timestamp(now)
        self.locked = {m: (chain.head_seq, chain.head_hash) for m, chain in chains.items()}
        self.chain_rows: dict[int, Chain] = {}  # for projectors, made when one runs
        types = {new.event.type for new in entries}
        self.projected_types = {event_type for event_type in types if projected([event_type])}
        self.requests = [
            _request_hash(chains[new.merchant_id].public_id, new.event) for new in entries
        ]
        self.seen: dict[str, tuple[Receipt, str]] = {}  # key: (its receipt, its request's hash)
        self.built: list[str] = []  # keys of the entries built last
        self.slots: list[Receipt | None] = []

    def next_entries(
        self,
    ) -> tuple[list[tuple[Entry, dict[str, Any]]], list[int]] | IdempotencyKeyReused:
        """(entry, event data) for each event whose key is not seen yet, and where each event
        sits in the input; or the refusal of a key seen for another event."""
        for merchant_id, chain in self.chains.items():
            chain.head_seq, chain.head_hash = self.locked[merchant_id]
        self.slots, self.built = [None] * len(self.entries), []
        pairs: list[tuple[Entry, dict[str, Any]]] = []
        positions: list[int] = []
        for index, (new, request) in enumerate(zip(self.entries, self.requests, strict=True)):
            if new.key in self.seen:
                earlier, earlier_request = self.seen[new.key]
                if earlier_request != request:
                    return IdempotencyKeyReused(source=self.source, idempotency_key=new.key)
                self.slots[index] = earlier
                continue
            chain = self.chains[new.merchant_id]
            entry = _next_entry(chain, self.source, new, request, self.now, self.now_text)
            if new.event.type in self.projected_types:
                Entry.chain.field.set_cached_value(entry, self._chain_row(chain))
            receipt = self.slots[index] = _receipt(chain.public_id, entry)
            self.seen[new.key] = (receipt, request)  # a key repeated inside the batch
            self.built.append(new.key)
            pairs.append((entry, new.event.data))
            positions.append(index)
        return pairs, positions

    def _chain_row(self, chain: LockedChain) -> Chain:
        if chain.merchant_id not in self.chain_rows:
            self.chain_rows[chain.merchant_id] = chain.as_chain()
        return self.chain_rows[chain.merchant_id]

    def moved(self) -> list[LockedChain]:
        """The chains whose heads the entries built last move."""
        return [c for m, c in self.chains.items() if (c.head_seq, c.head_hash) != self.locked[m]]

    def found_before(self, earlier: list[EarlierEntry]) -> None:
        """The entries built last were not written, as ``earlier`` hold keys of theirs: answer
        those events with the earlier receipts next time."""
        for key in self.built:
            del self.seen[key]
        for holder in earlier:
            self.seen[holder.key] = (_earlier_receipt(holder), holder.request_hash)

    def receipts(self) -> list[Receipt]:
        return self.slots  # type: ignore[return-value]  # every slot was filled


def _next_entry(
    chain: LockedChain, source: str, new: NewEntry, request: str, now: datetime, now_text: str
) -> Entry:
    """Build the next entry of ``chain`` and move the (locked, in-memory) head past it."""
    event = new.event
    seq = chain.head_seq + 1
    envelope = {
        "v": ENVELOPE_VERSION,
        "chain": chain.public_id,
        "seq": seq,
        "prev": chain.head_hash,
        "type": event.type,
        "source": source,
        "ref": event.ref,
        "occurred_at": event.occurred_at_text,
        "recorded_at": now_text,
    }
    body = canonical_json_embedding(envelope, data=event.data_json)
    entry = unsaved(
        Entry,
        chain_id=chain.merchant_id,
        seq=seq,
        type=event.type,
        source=source,
        external_ref=event.ref,
        idempotency_key=new.key,
        request_hash=request,
        occurred_at=event.occurred_at,
        recorded_at=now,
        prev_hash=chain.head_hash,
        hash=entry_hash(body),
        body=body,
    )
    chain.head_seq, chain.head_hash = seq, entry.hash
    return entry


def _earlier_receipt(earlier: EarlierEntry) -> Receipt:
    return Receipt(
        merchant=earlier.merchant,
        seq=earlier.seq,
        hash=earlier.hash,
        ref=earlier.ref,
        type=earlier.type,
    )


def _receipt(public_id: str, entry: Entry) -> Receipt:
    return Receipt(
        merchant=public_id,
        seq=entry.seq,
        hash=entry.hash,
        ref=entry.external_ref,
        type=entry.type,
    )


def ledger_verification_run(*, now: datetime, merchant_id: int | None = None) -> LedgerVerification:
    """Verify the chains and record the run, with progress while it goes, for the admin to show."""
    run = LedgerVerification.objects.create(started_at=now)

    def progress(entries: int) -> None:
        LedgerVerification.objects.filter(pk=run.pk).update(entries_checked=entries)

    result = ledger_verify(merchant_id=merchant_id, on_progress=progress)
    audit = log_audit(verifier=log_verifier())
    run.finished_at = timezone.now()
    run.chains_checked, run.entries_checked = result.chains, result.entries
    if result.first_break is not None:
        run.outcome = LedgerVerification.Outcome.BROKEN
        run.broken_merchant = result.first_break.merchant
        run.broken_seq = result.first_break.seq
        run.problem = result.first_break.problem
    elif audit.problem is not None:
        run.outcome = LedgerVerification.Outcome.BROKEN
        run.problem = f"log: {audit.problem}"
    elif (resting := ledger_checks_problem()) is not None:
        run.outcome = LedgerVerification.Outcome.BROKEN
        run.problem = resting
    else:
        run.outcome = LedgerVerification.Outcome.INTACT
        # The head proven here: a later run holds the tree to it (ledger/log/audit.py).
        run.log_size, run.log_root = audit.size, audit.root.hex()
    run.save()
    return run
