"""Chain verification: recompute every hash and link from the stored bytes, in constant memory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any

import orjson
from django.db import DEFAULT_DB_ALIAS, connection, connections

from ledger.canonical import GENESIS_PREV
from ledger.models import Chain

_PAGE = 5000
_CHUNK = 500
_COLUMNS = "SELECT chain_id, seq, prev_hash, hash, body, type, source, external_ref"
_PAGE_OF_ALL = (
    _COLUMNS + " FROM ledger_entry WHERE (chain_id, seq) > (%s, %s) ORDER BY chain_id, seq LIMIT %s"
)
_PAGE_OF_ONE = (
    _COLUMNS + " FROM ledger_entry WHERE (chain_id, seq) > (%s, %s) AND chain_id = %s"
    " ORDER BY chain_id, seq LIMIT %s"
)
_PROGRESS_EVERY = 50_000


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place where a chain stops proving itself."""

    merchant: str
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"merchant {self.merchant} seq {self.seq}: {self.problem}"


@dataclass(frozen=True, slots=True)
class VerificationResult:
    chains: int
    entries: int
    first_break: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


@dataclass(slots=True)
class _Head:
    public_id: str
    head_seq: int
    head_hash: str


def ledger_verify(
    *, merchant_id: int | None = None, on_progress: Callable[[int], None] | None = None
) -> VerificationResult:
    """Verify every chain (or one merchant's) and return the first break, if any.

    Streams entries in (merchant, seq) order a page at a time, so memory does not grow with
    the ledger. Needs no lock and no long transaction:
    appends go on while it runs, and ``on_progress`` may write where others can see it.
    """
    heads = _chain_heads(merchant_id)
    chains = len(heads)
    with closing(_stream(merchant_id)) as entries:  # stops the reading however this returns
        checked, problem = _entries_verify(entries, heads, on_progress)
    if problem is not None:
        return VerificationResult(chains, checked, problem)
    for chain_id, empty in heads.items():  # chains without a single entry
        if (problem := _head_problem(chain_id, empty, 0, GENESIS_PREV)) is not None:
            return VerificationResult(chains, checked, problem)
    return VerificationResult(chains, checked, None)


def _entries_verify(
    entries: Iterator[tuple[Any, ...]],
    heads: dict[int, _Head],
    on_progress: Callable[[int], None] | None,
) -> tuple[int, ChainBreak | None]:
    """Check the chains of ``entries`` against ``heads``, popping each chain's head as it is
    reached; return how many entries proved intact and the first break, if any."""
    checked, sha256 = 0, hashlib.sha256
    for chain_id, rows in groupby(entries, key=itemgetter(0)):
        head = heads.pop(chain_id, None)
        if head is None:
            return checked, ChainBreak(str(chain_id), 1, "entries of a chain that has no head row")
        expected_seq, expected_prev = 1, GENESIS_PREV
        for _, seq, prev, stored, body, type_, source, ref in rows:
            # The common case inline: this runs once per entry of the ledger, and a call with
            # ten arguments cost as much as the hashing. _entry_problem explains the rest.
            if (
                seq != expected_seq
                or prev != expected_prev
                or sha256(body).hexdigest() != stored
                or _envelope(body) != (seq, prev, head.public_id, type_, source, ref)
            ):
                reason = _entry_problem(
                    head, expected_seq, expected_prev, seq, prev, stored, body, type_, source, ref
                )
                return checked, ChainBreak(head.public_id, expected_seq, reason)
            expected_seq, expected_prev = seq + 1, stored
            checked += 1
            if on_progress is not None and checked % _PROGRESS_EVERY == 0:
                on_progress(checked)
        if (problem := _head_problem(chain_id, head, expected_seq - 1, expected_prev)) is not None:
            return checked, problem
    return checked, None


def _chain_heads(merchant_id: int | None) -> dict[int, _Head]:
    chains = Chain.objects.order_by("merchant_id")
    if merchant_id is not None:
        chains = chains.filter(merchant_id=merchant_id)
    return {
        merchant: _Head(public_id, head_seq, head_hash)
        for merchant, public_id, head_seq, head_hash in chains.values_list(
            "merchant_id", "merchant__public_id", "head_seq", "head_hash"
        ).iterator()
    }


def _stream(merchant_id: int | None) -> Generator[tuple[Any, ...], None, None]:
    """Every entry in (chain, seq) order, a page at a time.

    Keyset pages rather than one server-side cursor: outside a transaction PostgreSQL would
    materialise a held cursor's whole result before the first row, and each page here is a
    short statement that holds nothing between pages.
    """
    sql = _PAGE_OF_ONE if merchant_id else _PAGE_OF_ALL
    scope = [merchant_id] if merchant_id else []
    after: tuple[int, int] = (0, 0)
    with _page_reader() as read:
        while True:
            count, row = 0, None
            for row in read(sql, [*after, *scope, _PAGE]):
                count += 1
                yield row
            if row is None or count < _PAGE:
                return
            after = (row[0], row[1])


_Reader = Callable[[str, list[Any]], Iterable[tuple[Any, ...]]]


@contextmanager
def _page_reader() -> Iterator[_Reader]:
    """How pages are read; on PostgreSQL by a binary cursor, so bytea arrives as bytes.

    Outside a transaction the rows stream over a connection of their own while the caller
    checks them: the database reads ahead as Python hashes, and the caller's statements
    (progress, a fresh head) run on the default connection meanwhile. Inside a transaction
    only the default connection sees its rows, so each page is read whole before it is used.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield lambda sql, params: _fetched(cursor, sql, params)
        return
    if not connection.get_autocommit():  # in a transaction
        with connection.connection.cursor(binary=True) as cursor:
            yield lambda sql, params: list(cursor.stream(sql, params, size=_CHUNK))
        return
    own = connections[DEFAULT_DB_ALIAS].copy()
    try:
        own.ensure_connection()
        with own.connection.cursor(binary=True) as cursor:
            yield lambda sql, params: cursor.stream(sql, params, size=_CHUNK)
    finally:
        own.close()


def _fetched(cursor: Any, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    cursor.execute(sql, params)
    return list(cursor.fetchall())


def _envelope(body: bytes) -> tuple[Any, ...] | None:
    """What the body says of itself: (seq, prev, chain, type, source, ref); None if not JSON."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return (
        envelope.get("seq"),
        envelope.get("prev"),
        envelope.get("chain"),
        envelope.get("type"),
        envelope.get("source"),
        envelope.get("ref"),
    )


def _entry_problem(
    head: _Head,
    expected_seq: int,
    expected_prev: str,
    seq: int,
    prev: str,
    stored: str,
    body: bytes,
    type_: str,
    source: str,
    ref: str,
) -> str:
    if seq != expected_seq:
        return f"entry missing: the next entry stored is seq {seq}"
    if hashlib.sha256(body).hexdigest() != stored:
        return "body does not hash to the stored hash (the body was altered)"
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "body is not JSON"
    if envelope.get("seq") != seq:
        return f"body says seq {envelope.get('seq')} but the entry is stored at seq {seq}"
    if envelope.get("chain") != head.public_id:
        return f"body belongs to chain {envelope.get('chain')!r}"
    if envelope.get("prev") != expected_prev or prev != expected_prev:
        return "prev link broken: it does not name the previous entry's hash"
    if (envelope.get("type"), envelope.get("source"), envelope.get("ref")) != (type_, source, ref):
        return "queryable columns differ from the body"
    return "entry does not verify"  # unreachable while _entry_intact and this agree


def _head_problem(chain_id: int, head: _Head, last_seq: int, last_hash: str) -> ChainBreak | None:
    """Compare the last verified entry with the chain head read before streaming began."""
    if head.head_seq == last_seq and head.head_hash == last_hash:
        return None
    if head.head_seq > last_seq:
        return ChainBreak(
            head.public_id, last_seq + 1, f"entry missing: the chain head is seq {head.head_seq}"
        )
    if head.head_seq == last_seq:
        return ChainBreak(head.public_id, last_seq, "the chain head hash is not this entry's hash")
    # More entries than the head we read first: appends may have committed meanwhile, so only
    # a head that is still behind the entries means they were put there behind its back.
    fresh_seq = Chain.objects.filter(pk=chain_id).values_list("head_seq", flat=True).first()
    if fresh_seq is not None and fresh_seq >= last_seq:
        return None
    return ChainBreak(
        head.public_id,
        head.head_seq + 1,
        f"entry beyond the chain head (head is seq {head.head_seq})",
    )
