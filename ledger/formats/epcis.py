"""Read a GS1 EPCIS 2.0 JSON document into Chainfin shipment events.

The input is one JSON-decoded EPCIS document (``EPCISDocument``, or ``EPCISQueryDocument`` with
its events under ``epcisBody.queryResults.resultsBody``). It is read as plain JSON: the JSON-LD
``@context`` is never fetched or expanded, so vocabulary is recognised by its spellings below.

Mapping, per EPCIS event (ObjectEvent, AggregationEvent, TransactionEvent, TransformationEvent
and AssociationEvent are all read the same way):

- ``bizStep`` alone decides the ledger event: ``shipping`` -> ``shipment.dispatched``,
  ``receiving`` -> ``shipment.delivered``, ``returning`` -> ``shipment.returned``. Each may be
  written as the bare CBV word, ``cbv:BizStep-shipping``, ``urn:epcglobal:cbv:bizstep:shipping``
  or ``https://ref.gs1.org/cbv/BizStep-shipping`` (``http://`` too). ``disposition`` is not
  consulted (a ``receiving`` of goods whose disposition is ``returned`` is still a delivery).
  Any other step (``inspecting``, ``void_shipping``, a custom URI) or none is ignored.
- An event carrying ``errorDeclaration`` is ignored: it corrects an earlier event, and the
  ledger is append-only and has no correction event for EPCIS yet.
- ``data.order_ref``: the ``bizTransactionList`` entry of type purchase order (``po``,
  ``cbv:BTT-po``, ``urn:epcglobal:cbv:btt:po``, ``https://ref.gs1.org/cbv/BTT-po``), reduced to
  the identifier's last segment after the final ':' or '/':
  ``urn:epcglobal:cbv:bt:0614141073467:PO-1234`` -> ``PO-1234``,
  ``http://transaction.acme.com/po/12345678`` -> ``12345678``. No purchase order, or several
  naming different orders, and the event is ignored: a shipment belongs to exactly one order.
- ``ref`` (the shipment): the last segment of the despatch advice (``desadv`` in the same
  spellings), so that the shipping and the receiving of one consignment land on one shipment.
  Without one, the last segment of ``eventID`` (``urn:uuid:374d…`` -> ``374d…``;
  ``ni:///sha-256;df7b…?ver=CBV2.0`` -> ``sha-256;df7b…?ver=CBV2.0``), else ``epcis-`` and
  16 hex digits of a SHA-256 over the event. A dispatch without a despatch advice therefore
  opens a shipment of its own, which a later receiving under a despatch advice does not reach.
- ``occurred_at``: ``eventTime``, which EPCIS requires to carry its UTC offset; a time written
  without one takes ``eventTimeZoneOffset``. Digits below the microsecond are dropped.
- ``carrier`` is never set: CBV source/destination types name owning and possessing parties and
  locations, and a possessing party may as well be the carrier as the consignee.

Refusals (``EpcisRejected.code``), each located by a JSON pointer into the document:
``epcis_not_a_document``, ``epcis_no_events``, ``epcis_too_many_events`` (over 1,000 events),
``epcis_event_not_an_object``, ``epcis_bad_event_time`` (a recorded step with a missing,
malformed or out-of-range time) and ``epcis_invalid_content`` (a field the mapping reads is
malformed, or what it yields fails ``ledger.events.event_parse``). One refusal refuses the whole
document: it is evidence, and half of it would be a different story.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.events import event_parse, format_timestamp
from ledger.exceptions import EventInvalid, FieldError, LedgerError

MAX_EVENTS = 1000

EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
)
BIZ_STEP_EVENTS = {
    "shipping": "shipment.dispatched",
    "receiving": "shipment.delivered",
    "returning": "shipment.returned",
}
PURCHASE_ORDER = "po"
DESPATCH_ADVICE = "desadv"

ERROR_DECLARATION_REASON = (
    "error declarations correct an earlier event; Chainfin's ledger is append-only and does not"
    " apply corrections from EPCIS yet"
)
NO_PURCHASE_ORDER_REASON = "no purchase-order bizTransaction links it to an order"

_CBV_WORD = re.compile(r"[a-z][a-z0-9_]*", re.ASCII)
_SEGMENT_SEPARATORS = re.compile("[:/]")
_EVENT_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_ZONE_OFFSET = re.compile(r"[+-][0-9]{2}:[0-9]{2}")
_SHOWN_CHARS = 100


@dataclass(frozen=True, slots=True)
class EpcisEvent:
    """A ledger event read from one EPCIS event."""

    pointer: str  # JSON pointer of the source event in the document
    event: dict[str, Any]  # {"type", "ref", "occurred_at", "data"}, accepted by event_parse


@dataclass(frozen=True, slots=True)
class EpcisIgnored:
    """An EPCIS event that yields no ledger event, and why."""

    pointer: str
    reason: str


@dataclass(frozen=True, slots=True)
class EpcisResult:
    """What one document yields: every event of it lands in exactly one list, in order."""

    events: list[EpcisEvent]
    ignored: list[EpcisIgnored]


class EpcisRejected(LedgerError):
    """The document is not EPCIS Chainfin can read, or one of its shipment events is malformed."""

    code = "epcis_rejected"

    def __init__(self, code: str, message: str, pointer: str) -> None:
        self.code = code
        self.message = message
        self.pointer = pointer
        self.errors = [FieldError(pointer, message)]
        super().__init__(f"{pointer or '/'}: {message}")


def epcis_parse(document: object) -> EpcisResult:
    """Read the shipment events of one JSON-decoded EPCIS 2.0 document.

    Events that record no shipping, receiving or returning of an order come back in ``ignored``
    with the reason; the result may hold no events at all.

    :raises EpcisRejected: the document is not EPCIS, or a shipment event in it is malformed.
    """
    list_pointer, raw_events = _event_list(document)
    events: list[EpcisEvent] = []
    ignored: list[EpcisIgnored] = []
    for index, raw in enumerate(raw_events):
        read = _event_read(raw, f"{list_pointer}/{index}")
        if isinstance(read, EpcisEvent):
            events.append(read)
        else:
            ignored.append(read)
    return EpcisResult(events=events, ignored=ignored)


def _event_list(document: object) -> tuple[str, list[Any]]:
    if not isinstance(document, Mapping):
        raise EpcisRejected("epcis_not_a_document", "An EPCIS document must be a JSON object.", "")
    kind = document.get("type")
    if kind == "EPCISDocument":
        path: tuple[str, ...] = ("epcisBody",)
    elif kind == "EPCISQueryDocument":
        path = ("epcisBody", "queryResults", "resultsBody")
    else:
        raise EpcisRejected(
            "epcis_not_a_document",
            f'"type" must be "EPCISDocument" or "EPCISQueryDocument", not {_show(kind)}.',
            "/type",
        )
    container: Mapping[str, Any] = document
    pointer = ""
    for key in path:
        pointer += f"/{key}"
        child = container.get(key)
        if not isinstance(child, Mapping):
            problem = "is missing" if child is None else "must be an object"
            raise EpcisRejected("epcis_not_a_document", f"{kind} {key} {problem}.", pointer)
        container = child
    pointer += "/eventList"
    events = container.get("eventList")
    if events is None:
        raise EpcisRejected("epcis_no_events", "There is no eventList: no events to read.", pointer)
    if not isinstance(events, list):
        raise EpcisRejected("epcis_not_a_document", "eventList must be an array.", pointer)
    if not events:
        raise EpcisRejected("epcis_no_events", "eventList is empty: no events to read.", pointer)
    if len(events) > MAX_EVENTS:
        raise EpcisRejected(
            "epcis_too_many_events",
            f"eventList holds {len(events)} events; send at most {MAX_EVENTS} per document.",
            pointer,
        )
    return pointer, events


def _event_read(raw: object, pointer: str) -> EpcisEvent | EpcisIgnored:
    if not isinstance(raw, Mapping):
        raise EpcisRejected(
            "epcis_event_not_an_object", "An EPCIS event must be a JSON object.", pointer
        )
    kind = raw.get("type")
    if kind not in EVENT_TYPES:
        return EpcisIgnored(
            pointer,
            f"event type {_show(kind)} is not one of the EPCIS 2.0 event types"
            f" ({', '.join(EVENT_TYPES)})",
        )
    if raw.get("errorDeclaration") is not None:
        return EpcisIgnored(pointer, ERROR_DECLARATION_REASON)
    biz_step = raw.get("bizStep")
    if biz_step is None:
        return EpcisIgnored(
            pointer, "it has no bizStep, so nothing says it ships, receives or returns goods"
        )
    step = _cbv_word(biz_step, "BizStep", "bizstep") if isinstance(biz_step, str) else None
    if step is None:
        return EpcisIgnored(
            pointer,
            f"bizStep {_show(biz_step)} is not a CBV business step; Chainfin records only"
            " shipping, receiving and returning",
        )
    event_type = BIZ_STEP_EVENTS.get(step)
    if event_type is None:
        return EpcisIgnored(
            pointer,
            f"bizStep {_show(biz_step)} is not shipping, receiving or returning, the only"
            " business steps Chainfin records",
        )
    occurred_at = _occurred_at(raw, pointer)

    transactions = _biz_transactions(raw, pointer)
    orders = _identifiers(transactions, PURCHASE_ORDER)
    if not orders:
        return EpcisIgnored(pointer, NO_PURCHASE_ORDER_REASON)
    if len(orders) > 1:
        return EpcisIgnored(
            pointer,
            f"its purchase-order bizTransactions name {len(orders)} orders"
            f" ({', '.join(map(_show, orders))}); a shipment belongs to exactly one order",
        )
    [(order_ref, order_pointer)] = orders.items()
    advices = _identifiers(transactions, DESPATCH_ADVICE)
    if len(advices) > 1:
        return EpcisIgnored(
            pointer,
            f"its despatch-advice bizTransactions name {len(advices)} shipments"
            f" ({', '.join(map(_show, advices))}); one event records one shipment",
        )
    if advices:
        [(ref, ref_pointer)] = advices.items()
    elif (event_id := raw.get("eventID")) is not None:
        ref_pointer = f"{pointer}/eventID"
        if not isinstance(event_id, str):
            raise EpcisRejected("epcis_invalid_content", "eventID must be a string.", ref_pointer)
        ref = _last_segment(event_id)
    else:
        ref, ref_pointer = _hashed_ref(raw), pointer

    event = {
        "type": event_type,
        "ref": ref,
        "occurred_at": occurred_at,
        "data": {"order_ref": order_ref},
    }
    try:
        event_parse(event)
    except EventInvalid as exc:
        # Point at the EPCIS field the value came from: /data/order_ref is not in the document.
        error = exc.errors[0]
        sources = {
            "/ref": (ref_pointer, f"The shipment ref {_show(ref)} taken from here"),
            "/data/order_ref": (order_pointer, f"The order_ref {_show(order_ref)} taken from here"),
            "/occurred_at": (f"{pointer}/eventTime", "eventTime"),
        }
        source, what = sources.get(error.pointer, (pointer + error.pointer, error.pointer))
        code = (
            "epcis_bad_event_time" if error.pointer == "/occurred_at" else "epcis_invalid_content"
        )
        raise EpcisRejected(code, f"{what}: {error.message}", source) from None
    return EpcisEvent(pointer, event)


def _cbv_word(value: str, compact: str, urn: str) -> str | None:
    """The CBV word behind any of its spellings (``shipping``, ``cbv:BizStep-shipping``, ...)."""
    prefixes = (
        f"cbv:{compact}-",
        f"urn:epcglobal:cbv:{urn}:",
        f"https://ref.gs1.org/cbv/{compact}-",
        f"http://ref.gs1.org/cbv/{compact}-",
    )
    word = next((value[len(p) :] for p in prefixes if value.startswith(p)), value)
    return word if _CBV_WORD.fullmatch(word) else None


def _occurred_at(raw: Mapping[str, Any], pointer: str) -> str:
    where = f"{pointer}/eventTime"
    value = raw.get("eventTime")
    if value is None:
        raise EpcisRejected(
            "epcis_bad_event_time", "eventTime is required: it dates the shipment.", where
        )
    if not isinstance(value, str) or not (match := _EVENT_TIME.fullmatch(value)):
        raise EpcisRejected(
            "epcis_bad_event_time",
            f"eventTime {_show(value)} is not an RFC 3339 timestamp such as"
            " 2005-04-03T20:33:31.116-06:00.",
            where,
        )
    offset = match["offset"]
    if offset is None:
        offset = raw.get("eventTimeZoneOffset")
        if offset is None:
            raise EpcisRejected(
                "epcis_bad_event_time",
                "eventTime has no UTC offset and there is no eventTimeZoneOffset to supply one;"
                " the time is ambiguous.",
                where,
            )
        if not isinstance(offset, str) or not _ZONE_OFFSET.fullmatch(offset):
            raise EpcisRejected(
                "epcis_bad_event_time",
                f"eventTimeZoneOffset {_show(offset)} must be written +hh:mm or -hh:mm.",
                f"{pointer}/eventTimeZoneOffset",
            )
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    try:
        moment = datetime.fromisoformat(
            f"{match['date']}T{match['time']}.{fraction}{offset.upper()}"
        )
        return format_timestamp(moment)
    except (ValueError, OverflowError):  # 2005-02-30, +25:00, or year 1 moved across midnight
        raise EpcisRejected(
            "epcis_bad_event_time",
            f"eventTime {_show(value)} with offset {offset} is not a real point in time.",
            where,
        ) from None


def _biz_transactions(raw: Mapping[str, Any], pointer: str) -> list[tuple[str | None, str, str]]:
    """``(CBV type word or None, identifier, pointer)`` for each entry of bizTransactionList."""
    entries = raw.get("bizTransactionList")
    where = f"{pointer}/bizTransactionList"
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise EpcisRejected("epcis_invalid_content", "bizTransactionList must be an array.", where)
    transactions = []
    for index, entry in enumerate(entries):
        at = f"{where}/{index}"
        if not isinstance(entry, Mapping):
            raise EpcisRejected(
                "epcis_invalid_content", "A bizTransactionList entry must be an object.", at
            )
        identifier = entry.get("bizTransaction")
        if not isinstance(identifier, str):
            raise EpcisRejected(
                "epcis_invalid_content", "bizTransaction must be a string.", f"{at}/bizTransaction"
            )
        kind = entry.get("type")
        if kind is not None and not isinstance(kind, str):
            raise EpcisRejected(
                "epcis_invalid_content", "A bizTransaction type must be a string.", f"{at}/type"
            )
        word = _cbv_word(kind, "BTT", "btt") if kind is not None else None
        transactions.append((word, identifier, f"{at}/bizTransaction"))
    return transactions


def _identifiers(transactions: list[tuple[str | None, str, str]], kind: str) -> dict[str, str]:
    """The distinct last segments of the identifiers of one type, each with its first pointer."""
    found: dict[str, str] = {}
    for word, identifier, pointer in transactions:
        if word == kind:
            found.setdefault(_last_segment(identifier), pointer)
    return found


def _last_segment(identifier: str) -> str:
    return _SEGMENT_SEPARATORS.split(identifier)[-1]


def _hashed_ref(raw: Mapping[str, Any]) -> str:
    # Not ledger.canonical: it refuses floats, and sensor readings are floats. Sorted-key JSON
    # of the decoded event is stable, which is all a fallback ref needs.
    encoded = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return "epcis-" + hashlib.sha256(encoded.encode()).hexdigest()[:16]


def _show(value: object) -> str:
    """A value quoted for a message: JSON-escaped, encodable, at most 100 characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
