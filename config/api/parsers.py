"""Strict request parsers: JSON without duplicate keys, NaN or deep nesting; XML as raw bytes."""

from __future__ import annotations

import json
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

MAX_DEPTH = 32
_CONTAINERS = frozenset((dict, list))


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # in C; only a dict shorter than the pairs means a key repeated
    if len(result) == len(pairs):
        return result
    result = {}
    for key, value in pairs:  # find the first repeated key, to name it
        if key in result:
            raise ParseError(f"Duplicate key {key!r}: the meaning of the document is ambiguous.")
        result[key] = value
    return result


def _refuse_constant(name: str) -> None:
    raise ParseError(f"{name} is not valid JSON.")


def _depth(value: Any) -> int:
    """Nesting depth, iteratively, so a hostile document cannot exhaust the stack here.

    Decoded JSON holds no containers but dicts and lists: testing the exact type, not an ABC,
    keeps this walk at a fraction of the decoding's cost instead of twice it.
    """
    deepest, stack = 0, [(value, 1)] if type(value) in _CONTAINERS else []
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in item.values() if type(item) is dict else item:
            if type(child) in _CONTAINERS:
                stack.append((child, depth + 1))
    return deepest


def strict_json_loads(raw: bytes) -> Any:
    """Decode JSON refusing duplicate keys, NaN/Infinity, invalid UTF-8 and deep nesting.

    :raises ParseError: with a message fit for the sender.
    """
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant
        )
    except UnicodeDecodeError:
        raise ParseError("The body is not UTF-8.") from None
    except RecursionError:
        raise ParseError(f"The document nests deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:
        raise ParseError(f"The body is not valid JSON: {exc}") from None
    if _depth(value) > MAX_DEPTH:
        raise ParseError(f"The document nests deeper than {MAX_DEPTH} levels.")
    return value


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        return strict_json_loads(stream.read())


class JSONLDParser(StrictJSONParser):
    media_type = "application/ld+json"


class RawXMLParser(BaseParser):
    """Hands the XML bytes to the endpoint, which parses them safely (defusedxml)."""

    media_type = "application/xml"

    def parse(  # type: ignore[override]  # the view wants the bytes, not a mapping
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None
    ) -> bytes:
        return stream.read()


class RawTextXMLParser(RawXMLParser):
    media_type = "text/xml"
