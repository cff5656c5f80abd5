"""Checking a run of one chain's entries against their stored bytes and against each other.

``entries_verify`` is the one check of a run: ``ledger.verification`` streams whole chains
through it, and the officers' evidence trail (financing.selectors) checks single entries with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import orjson

from ledger.canonical import GENESIS_PREV
from ledger.events import format_timestamp
from ledger.models import Entry

# A row of a run to verify: (chain_id, seq, prev_hash, hash, body, type, source, external_ref,
# occurred_at spelled as entry bodies spell it, by ledger.events.format_timestamp).
EntryRow = tuple[int, int, str, str, bytes, str, str, str, str]


def entry_row(entry: Entry) -> EntryRow:
    """``entry`` as :func:`entries_verify` reads it."""
    return (
        entry.chain_id,
        entry.seq,
        entry.prev_hash,
        entry.hash,
        bytes(entry.body),
        entry.type,
        entry.source,
        entry.external_ref,
        format_timestamp(entry.occurred_at),
    )


def entries_verify(
    *,
    chain: str,
    rows: Sequence[EntryRow],
    predecessor: tuple[int, str] | None = (0, GENESIS_PREV),
    successor: EntryRow | None = None,
    head: tuple[int, str] | None = None,
) -> list[str]:
    """Check a run of one chain's entries against their stored bytes and against each other.

    ``rows`` are entries of the chain whose public id is ``chain``, in seq order, as
    :func:`entry_row` makes them (``EntryRow``). Each row must hash to
    its stored hash, say in its body what its columns say (chain, seq, prev, type, source,
    ref, occurred_at) and follow the row before it: the next seq, naming that row's hash as
    its prev. The first row follows ``predecessor``, the (seq, hash) of the stored entry before
    the run: ``(0, GENESIS_PREV)`` at the start of a chain, None when that entry is not stored.
    The last row must be named by ``successor``, the stored entry after the run, if given;
    else by ``head``, the chain head's (seq, hash), if given. A row's neighbours are read for
    their stored hash and prev only: their own bytes are their own rows' concern, so an altered
    entry is blamed alone.

    Returns one problem per row, "" for a row that verifies; where several apply, the first
    found is the one given. A gap is reported on the row after it.
    """
    problems = [""] * len(rows)
    if not rows:
        return problems
    sha256, start = hashlib.sha256, 0
    _, first_seq, _, first_hash, *_ = rows[0]
    if predecessor is None and first_seq > 1:
        # What is missing comes first; the rest of the run is judged from this row on.
        problems[0] = f"entry missing: seq {first_seq - 1} is not stored"
        predecessor, start = (first_seq, first_hash), 1
    expected_seq, expected_prev = (
        (predecessor[0] + 1, predecessor[1]) if predecessor else (1, GENESIS_PREV)
    )
    loads, says = orjson.loads, _ENVELOPE_SAYS
    for index, (_, seq, prev, stored, body, type_, source, ref, occurred) in enumerate(
        rows[start:] if start else rows, start
    ):
        # The common case inline: this runs once per entry of the ledger, and a call per entry
        # cost as much as the hashing. _entry_problem explains the rest.
        try:
            said = says(loads(body))
        except (orjson.JSONDecodeError, KeyError, TypeError):  # not JSON, not an object, a key
            said = None  # missing: _entry_problem names which
        if (
            seq != expected_seq
            or prev != expected_prev
            or sha256(body).hexdigest() != stored
            or said != (seq, prev, chain, type_, source, ref, occurred)
        ):
            problems[index] = _entry_problem(chain, expected_seq, expected_prev, rows[index])
        expected_seq, expected_prev = seq + 1, stored
    if problems[-1]:
        return problems
    _, last_seq, _, last_hash, *_ = rows[-1]
    if successor is not None:
        _, next_seq, next_prev, _, next_body, *_ = successor
        if next_prev != last_hash or _said_prev(next_body) != last_hash:
            problems[-1] = f"entry {next_seq} names another predecessor (this entry was replaced)"
    elif head is not None:
        problems[-1] = head_mismatch(last_seq, last_hash, *head)
    return problems


# What a body says of itself, in the order entries_verify compares it with the columns.
_ENVELOPE_SAYS = itemgetter("seq", "prev", "chain", "type", "source", "ref", "occurred_at")


def _said_prev(body: bytes) -> Any:
    try:
        return orjson.loads(body).get("prev")
    except (orjson.JSONDecodeError, AttributeError):
        return None


def _entry_problem(chain: str, expected_seq: int, expected_prev: str, row: EntryRow) -> str:
    """Why ``row`` does not verify, in one phrase; the first problem found."""
    _, seq, prev, stored, body, *_columns = row
    if seq != expected_seq:
        return f"entry missing: the next entry stored is seq {seq}"
    if hashlib.sha256(body).hexdigest() != stored:
        return "body does not hash to the stored hash (the body was altered)"
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "body is not JSON"
    if not isinstance(envelope, dict):
        return "body is not a JSON object"
    if envelope.get("seq") != seq:
        return f"body says seq {envelope.get('seq')} but the entry is stored at seq {seq}"
    if envelope.get("chain") != chain:
        return f"body belongs to chain {envelope.get('chain')!r}"
    if envelope.get("prev") != expected_prev or prev != expected_prev:
        return "the link is broken: it does not name the previous entry's hash"
    # What is left to differ: type, source, ref or occurred_at.
    return "queryable columns differ from the body"


def head_mismatch(last_seq: int, last_hash: str, head_seq: int, head_hash: str) -> str:
    """How the chain head disagrees with the last entry stored, "" if it does not."""
    if head_seq > last_seq:
        return f"entry missing: the chain head is seq {head_seq}"
    if head_seq < last_seq:
        return f"entry beyond the chain head (head is seq {head_seq})"
    if head_hash != last_hash:
        return "the chain head names another hash (this entry or the head was altered)"
    return ""
