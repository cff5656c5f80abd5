"""RFC 8785 canonical JSON and entry hashes.

``ledger.canonical`` takes an orjson fast path; these tests hold it to ``rfc8785.dumps``, the
reference implementation, byte for byte, and pin real entry bodies to a golden file.

How golden/entry_hashes.json was produced (once, by hand, NOT with ``ledger.canonical``): eight
sender events, one per event type, were written out together with the envelope ledger.services
builds from them (v, chain, seq, prev, type, source, ref, occurred_at, recorded_at, data), the
normalised values typed in by hand. Then, for each case in order::

    body = rfc8785.dumps(envelope)            # rfc8785 0.1.4, the reference implementation
    sha256 = hashlib.sha256(body).hexdigest()
    # the next envelope's "prev" is this sha256; the first one's is "0" * 64

and ``body.decode("utf-8")`` and ``sha256`` were stored next to the envelope. The cases form one
consistent chain (projectors accept them in order), so the service-level test can replay them.
If a golden test fails, the code changed, not the file: never regenerate it from our own code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.canonical import GENESIS_PREV, CanonicalizationError, canonical_json, entry_hash
from ledger.event_fields import FORBIDDEN_CHARS
from ledger.events import ValidEvent, event_parse, format_timestamp
from ledger.models import Entry
from ledger.money import format_minor_units, parse_minor_units
from ledger.services import NewEntry, entries_append, entry_append
from merchants.models import Merchant

SAFE_INTEGER = 2**53 - 1
GOLDEN = json.loads((Path(__file__).parent / "golden" / "entry_hashes.json").read_text("utf-8"))
GOLDEN_CASES = GOLDEN["cases"]

# ------------------------------------------------------------------------------------------
# Arbitrary JSON without floats
# ------------------------------------------------------------------------------------------

_chars = st.one_of(
    st.characters(codec="utf-8"),  # every Unicode scalar value, no surrogates
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF),  # sorts differently in UTF-16
    st.characters(min_codepoint=0x10000),  # astral: a surrogate pair in UTF-16
    st.characters(max_codepoint=0x1F),  # controls must be escaped
)
_texts = st.text(_chars, max_size=10)
# Keys from a tiny alphabet share prefixes, so UTF-16 and code-point orders get compared often.
_tricky_keys = st.text(
    st.sampled_from(["a", "\u00e9", "\uff21", "\ue000", "\U00010000", "\U0001f600"]), max_size=3
)
_keys = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=6),
    _texts,
    _tricky_keys,
)
_scalars = st.none() | st.booleans() | st.integers(-SAFE_INTEGER, SAFE_INTEGER) | _texts


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=5) | st.dictionaries(_keys, children, max_size=5)


json_values = st.recursive(_scalars, _containers, max_leaves=30)
_lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_canonical_json_is_rfc8785_for_json_without_floats(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@st.composite
def _with_lone_surrogate(draw: st.DrawFn) -> Any:
    value = draw(json_values)
    bad = draw(_texts) + draw(_lone_surrogates) + draw(_texts)
    key = draw(_keys)
    place: Callable[[Any, str], Any] = draw(
        st.sampled_from(
            [
                lambda v, s: [v, s],
                lambda v, s: [s, v],
                lambda v, s: {key: v, "x": s},
                lambda v, s: {"x": v, s: 1},  # the surrogate in a key
                lambda v, s: {"é": [v, {"deep": s}]},  # reference path (non-ASCII key)
                lambda v, s: {"a": [v, {"deep": s}]},  # fast path
            ]
        )
    )
    return place(value, bad)


@settings(max_examples=150, deadline=None)
@given(value=_with_lone_surrogate())
def test_lone_surrogates_are_refused_like_the_reference_refuses_them(value: Any) -> None:
    with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)):
        rfc8785.dumps(value)
    with pytest.raises(CanonicalizationError):
        canonical_json(value)


@pytest.mark.parametrize(
    "value",
    [
        "\ud800",
        "a\udfffb",
        ["\ud83d"],  # half of an emoji's surrogate pair
        {"\ud800": 1},
        {"é": "\ud800"},
        {"a": {"b": ["\udc00"]}},
    ],
    ids=["string", "inside-string", "in-list", "key", "reference-path", "nested-fast-path"],
)
def test_lone_surrogate_examples_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json(value)


_floats = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=150, deadline=None)
@given(number=_floats, value=json_values, key=_keys)
def test_floats_are_refused_wherever_they_sit(number: float, value: Any, key: str) -> None:
    for container in ({key: value, "amount": number}, [number, value], {"a": [{"b": number}]}):
        with pytest.raises(CanonicalizationError, match="Floats are not allowed"):
            canonical_json(container)


def test_a_float_after_a_non_ascii_keyed_object_in_a_list_is_refused() -> None:
    with pytest.raises(CanonicalizationError, match="Floats are not allowed"):
        canonical_json([{"é": 1}, 12.5])


_huge = st.integers(min_value=SAFE_INTEGER + 1) | st.integers(max_value=-SAFE_INTEGER - 1)


@settings(max_examples=150, deadline=None)
@given(number=_huge, value=json_values)
def test_integers_beyond_2_to_the_53_are_refused(number: int, value: Any) -> None:
    for container in (number, [value, number], {"é": value, "n": number}, {"n": [number]}):
        with pytest.raises(CanonicalizationError):
            canonical_json(container)


@pytest.mark.parametrize("number", [SAFE_INTEGER, -SAFE_INTEGER, 0, -1])
def test_integers_at_the_safe_limit_are_kept(number: int) -> None:
    assert canonical_json({"n": number}) == rfc8785.dumps({"n": number})


@pytest.mark.parametrize(
    "value",
    [
        Decimal("12.50"),
        datetime(2026, 1, 1, tzinfo=UTC),
        dt.date(2026, 1, 1),
        b"bytes",
        {1, 2},
        object(),
        {1: "integer key"},
        {None: "null key"},
        {"é": {2: "integer key on the reference path"}},
        [{"é": 1}, Decimal("1")],
    ],
    ids=lambda value: type(value).__name__,
)
def test_values_that_are_not_json_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json(value)


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is D83D DE00 in UTF-16, so it sorts before U+E000, although its code point is higher.
    value = {"\ue000": 1, "\U0001f600": 2, "a": 3, "nested": {"\uffff\u0000": 4, "\U00010000": 5}}
    expected = (
        '{"a":3,"nested":{"\U00010000":5,"\uffff\\u0000":4},"\U0001f600":2,"\ue000":1}'
    ).encode()
    assert canonical_json(value) == expected == rfc8785.dumps(value)


def test_strings_are_escaped_as_rfc8785_prescribes() -> None:
    value = '\x00\x08\t\n\x0c\r\x1f\x7f\u2028"\\/'
    assert canonical_json(value) == b'"\\u0000\\b\\t\\n\\f\\r\\u001f\x7f\xe2\x80\xa8\\"\\\\/"'


def test_entry_hash_is_hex_sha256_of_the_body() -> None:
    assert entry_hash(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert entry_hash(b'{"a":1}') == hashlib.sha256(b'{"a":1}').hexdigest()


# ------------------------------------------------------------------------------------------
# Golden entry bodies
# ------------------------------------------------------------------------------------------


def test_golden_file_covers_every_event_type() -> None:
    assert sorted({case["envelope"]["type"] for case in GOLDEN_CASES}) == [
        "invoice.credited",
        "invoice.issued",
        "order.cancelled",
        "order.placed",
        "payout.settled",
        "shipment.delivered",
        "shipment.dispatched",
        "shipment.returned",
    ]


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=[case["name"] for case in GOLDEN_CASES])
def test_golden_envelope_has_its_expected_body_and_hash(case: dict[str, Any]) -> None:
    body = canonical_json(case["envelope"])
    assert body == case["body"].encode("utf-8")
    assert entry_hash(body) == case["sha256"]


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=[case["name"] for case in GOLDEN_CASES])
def test_golden_event_parses_to_its_envelope_fields(case: dict[str, Any]) -> None:
    parsed = event_parse(case["event"])
    envelope = case["envelope"]
    assert parsed.type == envelope["type"]
    assert parsed.ref == envelope["ref"]
    assert format_timestamp(parsed.occurred_at) == envelope["occurred_at"]
    assert parsed.data == envelope["data"]


@pytest.mark.django_db
def test_appending_the_golden_events_writes_the_golden_bodies(
    merchant: Merchant,
) -> None:
    first = GOLDEN_CASES[0]["envelope"]
    Merchant.objects.filter(pk=merchant.pk).update(public_id=first["chain"])
    merchant.tax_id = "DE123456789"  # the golden invoices name their supplier: this merchant
    merchant.save(update_fields=["tax_id"])
    recorded_at = datetime.fromisoformat(first["recorded_at"])
    entries_append(
        source=first["source"],
        entries=[
            NewEntry(merchant_id=merchant.pk, event=event_parse(case["event"]))
            for case in GOLDEN_CASES
        ],
        now=recorded_at,
    )
    written = list(Entry.objects.filter(chain_id=merchant.pk).order_by("seq"))
    assert [bytes(entry.body) for entry in written] == [
        case["body"].encode("utf-8") for case in GOLDEN_CASES
    ]
    assert [entry.hash for entry in written] == [case["sha256"] for case in GOLDEN_CASES]
    assert written[0].prev_hash == GENESIS_PREV


# ------------------------------------------------------------------------------------------
# The JSON text a sender chose never changes the hash
# ------------------------------------------------------------------------------------------

# What event fields accept: none of the characters they refuse (controls, surrogates,
# non-characters, bidi overrides: the parser's own set), no outer whitespace.
_field_chars = st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")).filter(
    lambda char: not FORBIDDEN_CHARS.match(char)
)


def _field_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_field_chars, min_size=1, max_size=max_size).filter(
        lambda text: text == text.strip() and bool(text)
    )


_currencies = st.sampled_from(["EUR", "JPY", "KWD", "CLF", "USD"])
_offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))]
)
_moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2026, 10, 31), timezones=_offsets
)
_days = st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2026, 10, 31))


@st.composite
def raw_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid sender event with unicode text and an amount drawn as integer minor units."""
    currency = draw(_currencies)
    amount = format_minor_units(draw(st.integers(1, 10**12)), currency)
    kind = draw(
        st.sampled_from(["order.placed", "invoice.issued", "shipment.dispatched", "payout.settled"])
    )
    data: dict[str, Any]
    if kind == "order.placed":
        data = {"currency": currency, "amount": amount}
        data["buyer"] = {"id": draw(_field_text(20)), "name": draw(_field_text(30))}
    elif kind == "invoice.issued":
        issued = draw(_days)
        data = {
            "currency": currency,
            "amount": amount,
            "order_ref": draw(_field_text(20)),
            "issue_date": issued.isoformat(),
            "due_date": (issued + timedelta(days=draw(st.integers(0, 90)))).isoformat(),
            "debtor": {"kind": "business", "name": draw(_field_text(30)), "country": "DE"},
        }
    elif kind == "shipment.dispatched":
        data = {"order_ref": draw(_field_text(20)), "carrier": draw(_field_text(30))}
    else:
        # Lines may not sum above the payout: each carries an equal share of it, at most.
        minor = parse_minor_units(amount, currency)
        lines = draw(st.lists(_field_text(20), max_size=3))[:minor]
        share = format_minor_units(minor // max(1, len(lines)), currency)
        data = {
            "currency": currency,
            "amount": amount,
            "settled_on": draw(_days).isoformat(),
            "lines": [{"invoice_ref": ref, "amount": share} for ref in lines],
        }
    return {
        "type": kind,
        "ref": draw(_field_text(30)),
        "occurred_at": draw(_moments).isoformat(),
        "data": data,
    }


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def _escape_every_character(value: Any) -> str:
    """JSON text with every character of every string (keys too) written as \\uXXXX."""
    if isinstance(value, str):
        units = value.encode("utf-16-be")
        return (
            '"'
            + "".join(f"\\u{units[i]:02X}{units[i + 1]:02X}" for i in range(0, len(units), 2))
            + '"'
        )
    if isinstance(value, dict):
        items = (
            f"{_escape_every_character(k)}:{_escape_every_character(v)}" for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_escape_every_character(item) for item in value) + "]"
    return json.dumps(value)


def _spellings(raw: dict[str, Any]) -> list[str]:
    return [
        json.dumps(raw, sort_keys=True, ensure_ascii=False),
        json.dumps(_reversed_keys(raw), indent=2, ensure_ascii=False),
        json.dumps(raw, ensure_ascii=True),  # \uXXXX escapes, surrogate pairs for astral chars
        _escape_every_character(_reversed_keys(raw)),
    ]


def _canonical_request(merchant: str, event: ValidEvent) -> bytes:
    # The same request ledger.services hashes for idempotency.
    return canonical_json(
        {
            "merchant": merchant,
            "type": event.type,
            "ref": event.ref,
            "occurred_at": format_timestamp(event.occurred_at),
            "data": event.data,
        }
    )


@settings(max_examples=150, deadline=None)
@given(raw=raw_events())
def test_json_spelling_never_changes_the_parsed_event_or_its_hash(raw: dict[str, Any]) -> None:
    texts = _spellings(raw)
    assert len(set(texts)) == len(texts)  # four different texts ...
    parsed = [event_parse(json.loads(text)) for text in texts]
    assert all(event == parsed[0] for event in parsed)  # ... one event
    data = {canonical_json(event.data) for event in parsed}
    requests = {hashlib.sha256(_canonical_request("mer_x", event)).hexdigest() for event in parsed}
    assert len(data) == len(requests) == 1


@st.composite
def _respelled(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """An event and the same facts spelled differently: short amount, another UTC offset."""
    minor = draw(st.integers(1, 10**12))
    currency = draw(_currencies)
    moment = draw(_moments)
    canonical = format_minor_units(minor, currency)
    short = canonical.rstrip("0").rstrip(".") if "." in canonical else canonical

    def event(amount: str, occurred_at: str) -> dict[str, Any]:
        return {
            "type": "order.placed",
            "ref": "ORD-1",
            "occurred_at": occurred_at,
            "data": {"currency": currency, "amount": amount},
        }

    other = moment.astimezone(draw(_offsets))
    return event(canonical, moment.isoformat()), event(short, other.isoformat())


@settings(max_examples=100, deadline=None)
@given(pair=_respelled())
def test_equivalent_amounts_and_offsets_give_one_canonical_request(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    first, second = (event_parse(raw) for raw in pair)
    assert first == second
    assert _canonical_request("mer_x", first) == _canonical_request("mer_x", second)
    assert format_timestamp(first.occurred_at).endswith("Z")


_sources = count(1)


@pytest.mark.django_db
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=raw_events())
def test_json_spelling_never_changes_the_appended_entry(
    raw: dict[str, Any], make_merchant: Callable[..., Merchant], now: datetime
) -> None:
    bodies = []
    for text in _spellings(raw):
        merchant = make_merchant()
        receipt = entry_append(
            source=f"spelling-{next(_sources)}",
            merchant_id=merchant.pk,
            event=event_parse(json.loads(text)),
            now=now,
        )
        entry = Entry.objects.get(chain_id=merchant.pk, seq=receipt.seq)
        assert bytes(entry.body) == rfc8785.dumps(orjson.loads(entry.body))
        assert entry.hash == hashlib.sha256(entry.body).hexdigest() == receipt.hash
        bodies.append(orjson.loads(entry.body))
    assert all(body["data"] == bodies[0]["data"] for body in bodies)
    same_fields = ("type", "ref", "occurred_at", "recorded_at", "seq", "prev")
    assert all(
        {field: body[field] for field in same_fields}
        == {field: bodies[0][field] for field in same_fields}
        for body in bodies
    )
