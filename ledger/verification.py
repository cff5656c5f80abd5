"""Chain verification: recompute every hash and link from the stored bytes, in constant memory.

``ledger_verify`` streams whole chains, in one process or several, through ``entries_verify``
(ledger.entry_checks), the one check of a run of entries.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC
from itertools import groupby, islice, pairwise
from operator import itemgetter
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from psycopg import IsolationLevel

from ledger.canonical import GENESIS_PREV
from ledger.entry_checks import EntryRow, entries_verify, head_mismatch
from ledger.events import format_timestamp
from ledger.models import Chain

_PAGE = 5000
_CHUNK = 500
_COLUMNS = "SELECT chain_id, seq, prev_hash, hash, body, type, source, external_ref, "
# PostgreSQL spells occurred_at the bodies' way, so the verifier compares two strings: decoding
# a timestamp and formatting it in Python would cost a fifth of the hashing. A test holds the
# two spellings equal.
OCCURRED_AT_SPELLED = """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
_PAGE_OF_ALL = " FROM ledger_entry WHERE (chain_id, seq) > (%s, %s) ORDER BY chain_id, seq LIMIT %s"
_PAGE_OF_ONE = (
    " FROM ledger_entry WHERE (chain_id, seq) > (%s, %s) AND chain_id = %s"
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
    *,
    merchant_id: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> VerificationResult:
    """Verify every chain (or one merchant's) and return the first break, if any.

    Streams entries in (merchant, seq) order a page at a time, so memory does not grow with
    the ledger. Needs no lock and no long transaction:
    appends go on while it runs, and ``on_progress`` may write where others can see it.
    With ``workers`` > 1, on PostgreSQL and outside a transaction, the chains are split into
    ranges that a pool of that many processes verifies side by side (``_verify_parallel``);
    the result is the same, the first break still the first in merchant order.
    """
    if workers > 1 and merchant_id is None and _can_fork_workers():
        return _verify_parallel(workers, on_progress)
    heads = _chain_heads(merchant_id)
    chains = len(heads)
    with closing(_stream(merchant_id)) as entries:  # stops the reading however this returns
        checked, problem = _chains_verify(entries, heads, on_progress, _fresh_head_seq)
    if problem is not None:
        return VerificationResult(chains, checked, problem)
    if (problem := _empty_chains_problem(heads, _fresh_head_seq)) is not None:
        return VerificationResult(chains, checked, problem)
    return VerificationResult(chains, checked, None)


def _empty_chains_problem(
    heads: dict[int, _Head], fresh_head_seq: Callable[[int], int | None] | None
) -> ChainBreak | None:
    """The first of the chains left in ``heads`` (none of their entries were read) that is not
    an empty chain."""
    for chain_id, empty in heads.items():
        if (problem := _head_problem(chain_id, empty, 0, GENESIS_PREV, fresh_head_seq)) is not None:
            return problem
    return None


# --- several processes -----------------------------------------------------------------------

# Ranges per worker: a few each, so one slow range (a long chain, a busy core) does not leave
# the other workers idle at the end, and few enough that a connection per range costs nothing.
_RANGES_PER_WORKER = 4
_LAST_ID = 2**63 - 1
_RANGE_HEADS = (
    "SELECT c.merchant_id, m.public_id, c.head_seq, c.head_hash FROM ledger_chain c"
    " JOIN merchants_merchant m ON m.id = c.merchant_id"
    " WHERE c.merchant_id > %s AND c.merchant_id <= %s ORDER BY c.merchant_id"
)
_RANGE_ENTRIES = " FROM ledger_entry WHERE chain_id > %s AND chain_id <= %s ORDER BY chain_id, seq"
# A range is a large share of the table, so the planner would rather scan it all, sort it on
# disk and add parallel workers: on a machine whose cores the verifiers need, that made two
# workers slower than one process. The (chain, seq) index hands the rows over in order already.
_RANGE_PLAN = (  # SET LOCAL, as one statement a connection may prepare
    "SELECT set_config('enable_sort', 'off', true),"
    " set_config('max_parallel_workers_per_gather', '0', true)"
)


def _can_fork_workers() -> bool:
    """Workers see only committed rows, and a daemonic process (a Celery prefork worker) may
    not have children: there, verification runs in the calling process."""
    return (
        connection.vendor == "postgresql"
        and connection.get_autocommit()
        and not multiprocessing.current_process().daemon
    )


def _verify_parallel(workers: int, on_progress: Callable[[int], None] | None) -> VerificationResult:
    """Verify all chains in ranges of merchant ids, ``workers`` processes side by side.

    Ranges come back in merchant order, so the first break reported is the first in that
    order, as in one process; the entries counted are those before it. Each range is read in
    one REPEATABLE READ snapshot, its heads with its entries, the entries streamed from one
    query in chunks (constant memory: the server waits while the socket is full), and checked
    by ``_chains_verify`` (so ``entries_verify``). Streamed rather than FETCHed from a DECLAREd
    cursor: each FETCH is a round trip during which the server reads nothing ahead, and the
    worker ran a fifth slower so.
    """
    heads = _chain_heads(None)
    chains, checked = len(heads), 0  # chains as one process counts them: those read first
    # Fork: the children start with the app loaded; each opens a connection of its own once
    # (``_worker_connect``) and never touches the parent's.
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_connect
    )
    try:
        ranges = _ranges(heads, workers * _RANGES_PER_WORKER)
        for range_checked, problem in pool.map(_range_verify, ranges):
            before, checked = checked, checked + range_checked
            if problem is not None:  # what the later ranges hold no longer matters
                return VerificationResult(chains, checked, problem)
            if on_progress is not None and checked // _PROGRESS_EVERY > before // _PROGRESS_EVERY:
                on_progress(checked)
        return VerificationResult(chains, checked, None)
    finally:
        # Ranges not started are dropped, those under way finish; then the workers exit and
        # close their connections. (multiprocessing.Pool.terminate() killed them mid-query
        # instead, and once hung a test run for a quarter of an hour.)
        pool.shutdown(wait=True, cancel_futures=True)


_worker_connection: Any = None  # a pool worker's own connection, opened once for its ranges


def _worker_connect() -> None:
    """Pool initializer: open this worker's connection; a connection per range cost ~3 ms, a
    tenth of a range's time on a 200,000-entry ledger."""
    global _worker_connection
    # The worker inherits the parent's heap; left tracked, its collections walk all of it and
    # copy each page they touch (copy-on-write): 5 % of a run forked from a large process.
    gc.freeze()
    _worker_connection = connections[DEFAULT_DB_ALIAS].copy()
    _worker_connection.ensure_connection()
    # Run at the worker's normal exit (the pool's shutdown), so the server sees a clean goodbye.
    multiprocessing.util.Finalize(None, _worker_connection.close, exitpriority=10)


def _ranges(heads: dict[int, _Head], parts: int) -> list[tuple[int, int]]:
    """(after, up to) merchant id bounds covering every id, of about equal numbers of entries.

    The first range starts below every id and the last ends above them all, so a chain created
    after ``heads`` were read still falls in one.
    """
    total = sum(head.head_seq for head in heads.values())
    share, bounds, running = max(1, total // parts), [0], 0
    for chain_id, head in heads.items():
        running += head.head_seq
        if running >= share * len(bounds) and len(bounds) < parts:
            bounds.append(chain_id)
    bounds.append(_LAST_ID)
    return list(pairwise(bounds))


def _range_verify(bounds: tuple[int, int]) -> tuple[int, ChainBreak | None]:
    """In a worker: verify the chains of merchant ids in ``bounds``; return how many entries
    proved intact and the first break, if any."""
    pg = _worker_connection.connection
    pg.isolation_level, pg.read_only = IsolationLevel.REPEATABLE_READ, True
    with pg.transaction(), pg.cursor() as cursor:
        cursor.execute(_RANGE_PLAN)
        cursor.execute(_RANGE_HEADS, bounds)
        heads = {row[0]: _Head(*row[1:]) for row in cursor.fetchall()}
        select = _COLUMNS + OCCURRED_AT_SPELLED + _RANGE_ENTRIES
        # closing(): a stream left half-read holds the connection's lock, and the COMMIT
        # that ends the transaction would wait for it forever (after a break, say).
        with (
            pg.cursor(binary=True) as entries,
            closing(entries.stream(select, bounds, size=_CHUNK)) as rows,
        ):
            checked, problem = _chains_verify(rows, heads, None)
        if problem is None:
            problem = _empty_chains_problem(heads, None)
    return checked, problem


def _chains_verify(
    entries: Iterator[EntryRow],
    heads: dict[int, _Head],
    on_progress: Callable[[int], None] | None,
    fresh_head_seq: Callable[[int], int | None] | None = None,
) -> tuple[int, ChainBreak | None]:
    """Check the chains of ``entries`` against ``heads``, popping each chain's head as it is
    reached; return how many entries proved intact and the first break, if any.

    ``fresh_head_seq`` reads a chain's head again when entries run past the one in ``heads``
    (see ``_head_problem``); None when ``heads`` and ``entries`` come from one snapshot.
    """
    checked = 0
    for chain_id, rows in groupby(entries, key=itemgetter(0)):
        head = heads.pop(chain_id, None)
        if head is None:
            return checked, ChainBreak(str(chain_id), 1, "entries of a chain that has no head row")
        last: tuple[int, str] = (0, GENESIS_PREV)
        while run := list(islice(rows, _CHUNK)):
            problems = entries_verify(chain=head.public_id, rows=run, predecessor=last)
            if any(problems):
                index = next(n for n, problem in enumerate(problems) if problem)
                # The break is where the next seq was due: at a gap, the first seq missing.
                at = run[index - 1][1] + 1 if index else last[0] + 1
                return checked + index, ChainBreak(head.public_id, at, problems[index])
            before, checked = checked, checked + len(run)
            if on_progress is not None and checked // _PROGRESS_EVERY > before // _PROGRESS_EVERY:
                on_progress(checked)
            _, last_seq, _, last_hash, *_ = run[-1]
            last = (last_seq, last_hash)
        if (problem := _head_problem(chain_id, head, *last, fresh_head_seq)) is not None:
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


def _stream(merchant_id: int | None) -> Generator[EntryRow, None, None]:
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


# Reads the rows of "SELECT <the row's columns>" + the FROM ... clause given.
_Reader = Callable[[str, list[Any]], Iterable[EntryRow]]


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
    select = _COLUMNS + OCCURRED_AT_SPELLED
    if not connection.get_autocommit():  # in a transaction
        with connection.connection.cursor(binary=True) as cursor:
            yield lambda sql, params: list(cursor.stream(select + sql, params, size=_CHUNK))
        return
    own = connections[DEFAULT_DB_ALIAS].copy()
    try:
        own.ensure_connection()
        with own.connection.cursor(binary=True) as cursor:
            yield lambda sql, params: cursor.stream(select + sql, params, size=_CHUNK)
    finally:
        own.close()


def _fetched(cursor: Any, sql: str, params: list[Any]) -> list[EntryRow]:
    cursor.execute(_COLUMNS + "occurred_at" + sql, params)
    # SQLite hands timestamps back naive; they are stored in UTC.
    return [
        (*row[:-1], format_timestamp(row[-1].replace(tzinfo=row[-1].tzinfo or UTC)))
        for row in cursor.fetchall()
    ]


def _head_problem(
    chain_id: int,
    head: _Head,
    last_seq: int,
    last_hash: str,
    fresh_head_seq: Callable[[int], int | None] | None,
) -> ChainBreak | None:
    """Compare the last verified entry with the chain head read before streaming began."""
    problem = head_mismatch(last_seq, last_hash, head.head_seq, head.head_hash)
    if not problem:
        return None
    if head.head_seq > last_seq:
        return ChainBreak(head.public_id, last_seq + 1, problem)
    if head.head_seq == last_seq:
        return ChainBreak(head.public_id, last_seq, problem)
    # More entries than the head we read first: appends may have committed meanwhile, so only
    # a head that is still behind the entries means they were put there behind its back.
    # Read from one snapshot (fresh_head_seq None), heads and entries cannot disagree so.
    fresh_seq = fresh_head_seq(chain_id) if fresh_head_seq is not None else None
    if fresh_seq is not None and fresh_seq >= last_seq:
        return None
    return ChainBreak(head.public_id, head.head_seq + 1, problem)


def _fresh_head_seq(chain_id: int) -> int | None:
    return Chain.objects.filter(pk=chain_id).values_list("head_seq", flat=True).first()


# What rests on the chains: other apps' tables that must agree with them (financing registers
# its assignments, advances and journals at app-ready time, as it registers projectors).
# Each check returns None, or the first disagreement in words.
LedgerCheck = Callable[[], "str | None"]
_checks: list[LedgerCheck] = []


def ledger_check_register(check: LedgerCheck) -> LedgerCheck:
    """Have ``verify_ledger`` run ``check`` once the chains and the log hold (once, however
    often registered)."""
    if check not in _checks:
        _checks.append(check)
    return check


def ledger_checks_problem() -> str | None:
    """The first problem a registered check finds, in the order they registered, or None."""
    for check in _checks:
        problem = check()
        if problem is not None:
            return problem
    return None
