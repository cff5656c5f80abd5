"""EPCIS 2.0 documents become shipment events, or precise reasons why not.

GS1's own example documents (../shared/formats/epcis, read as they are) pin the outcome of every
event in them; the produced events then go through ``entry_append`` so the projector agrees with
the refs and order refs. Hand-made documents cover the spellings and the refusals.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger.events import event_parse
from ledger.exceptions import LedgerError
from ledger.formats.epcis import (
    ERROR_DECLARATION_REASON,
    MAX_EVENTS,
    NO_PURCHASE_ORDER_REASON,
    EpcisEvent,
    EpcisIgnored,
    EpcisRejected,
    epcis_parse,
)
from ledger.models import Shipment
from ledger.services import entry_append

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "formats" / "epcis"
MISSING = object()  # marks a field to delete

DISPATCHED = "shipment.dispatched"
DELIVERED = "shipment.delivered"
RETURNED = "shipment.returned"


@dataclass(frozen=True)
class Made:
    index: int
    type: str
    ref: str
    order_ref: str
    occurred_at: str


@dataclass(frozen=True)
class Ignored:
    index: int
    fragment: str


NI_961_SHIPPING = (
    "sha-256;df7bb3c352fef055578554f09f5e2aa41782150ced7bd0b8af24dd3ccb30ba69?ver=CBV2.0"
)
NI_961_DL_SHIPPING = (
    "sha-256;9fa42e8bf64e1cfe152d582a248646ce0ad2b0c6826c7e8ed95442a7a1545f33?ver=CBV2.0"
)
NOT_RECORDED = "is not shipping, receiving or returning"

# Every sample file and what becomes of each of its events. A new or a vanished file fails
# test_every_sample_file_has_an_expected_outcome.
EXPECTED: dict[str, list[Made | Ignored]] = {
    "Example_9.6.1-ObjectEvent.jsonld": [
        # The shipping event names only the purchase order, no despatch advice, so its ref is
        # its eventID; the receiving event's desadv 1152 does not reach it.
        Made(0, DISPATCHED, NI_961_SHIPPING, "12345678", "2005-04-04T02:33:31.116000Z"),
        Made(1, DELIVERED, "1152", "12345678", "2005-04-05T02:33:31.116000Z"),
    ],
    "Example_9.6.1-ObjectEventWithDigitalLink.jsonld": [
        Made(0, DISPATCHED, NI_961_DL_SHIPPING, "12345678", "2005-04-04T02:33:31.116000Z"),
        Made(1, DELIVERED, "1152", "12345678", "2005-04-05T02:33:31.116000Z"),
    ],
    "Example_9.6.1-ObjectEvent-with-error-declaration.jsonld": [
        Ignored(0, ERROR_DECLARATION_REASON),
        Made(1, DELIVERED, "1152", "12345678", "2005-04-05T02:33:31.116000Z"),
    ],
    "Example_9.6.2-ObjectEvent.jsonld": [Ignored(0, NO_PURCHASE_ORDER_REASON)],
    "Example_9.6.3-AggregationEvent.jsonld": [Ignored(0, NO_PURCHASE_ORDER_REASON)],
    "Example-TransactionEvents-2020_07_03y.jsonld": [
        Ignored(
            0,
            'bizStep "http://epcis.example.org/hc/bizstep/summarising_discharge" is not a CBV'
            " business step",
        ),
        Ignored(1, f'bizStep "transporting" {NOT_RECORDED}'),
    ],
    "PersistentDisposition-example.jsonld": [
        Made(
            0,
            DELIVERED,
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            "XYZ567",
            "2020-06-07T17:10:16.000000Z",
        ),
        Ignored(1, f'bizStep "inspecting" {NOT_RECORDED}'),
    ],
    "SensorDataExample1.jsonld": [Ignored(0, f'bizStep "inspecting" {NOT_RECORDED}')],
    "object_event_all_possible_fields.jsonld": [Ignored(0, ERROR_DECLARATION_REASON)],
    "transaction_event_all_possible_fields.jsonld": [Ignored(0, ERROR_DECLARATION_REASON)],
}


def _samples_dir() -> Path:
    if not SAMPLES.is_dir():
        message = f"the GS1 EPCIS sample documents are missing: {SAMPLES} does not exist"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"REQUIRE_SERVICES=1 but {message}")
        pytest.skip(f"!! {message}: skipping")
    return SAMPLES


def _load(name: str) -> Any:
    return json.loads((_samples_dir() / name).read_text(encoding="utf-8"))


def _append_all(events: list[EpcisEvent], *, merchant, marketplace, now) -> None:
    for read in events:
        entry_append(
            source=marketplace.code,
            merchant_id=merchant.pk,
            event=event_parse(read.event),
            now=now,
        )


def _shipments(merchant) -> dict[str, tuple[str, str]]:
    rows = Shipment.objects.filter(merchant=merchant).values_list("ref", "order_ref", "status")
    return {ref: (order_ref, status) for ref, order_ref, status in rows}


# --- the GS1 samples -----------------------------------------------------------------------


def test_every_sample_file_has_an_expected_outcome() -> None:
    files = {path.name for path in _samples_dir().glob("*.jsonld")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_outcome(name: str) -> None:
    document = _load(name)
    pointer = "/epcisBody/eventList/{}".format
    result = epcis_parse(document)

    made = [o for o in EXPECTED[name] if isinstance(o, Made)]
    assert result.events == [
        EpcisEvent(
            pointer(m.index),
            {
                "type": m.type,
                "ref": m.ref,
                "occurred_at": m.occurred_at,
                "data": {"order_ref": m.order_ref},
            },
        )
        for m in made
    ]
    ignored = [o for o in EXPECTED[name] if isinstance(o, Ignored)]
    assert [i.pointer for i in result.ignored] == [pointer(i.index) for i in ignored]
    for got, expected in zip(result.ignored, ignored, strict=True):
        assert expected.fragment in got.reason
    # Each EPCIS event is accounted for exactly once.
    assert len(result.events) + len(result.ignored) == len(document["epcisBody"]["eventList"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name",
    sorted(n for n, outcomes in EXPECTED.items() if any(isinstance(o, Made) for o in outcomes)),
)
def test_sample_events_append_to_a_chain(name: str, merchant, marketplace, now) -> None:
    result = epcis_parse(_load(name))
    _append_all(result.events, merchant=merchant, marketplace=marketplace, now=now)

    status = {DISPATCHED: "dispatched", DELIVERED: "delivered", RETURNED: "returned"}
    expected = {m.ref: (m.order_ref, status[m.type]) for m in EXPECTED[name] if isinstance(m, Made)}
    assert _shipments(merchant) == expected


@pytest.mark.django_db
def test_sample_9_6_1_as_is_leaves_dispatch_and_delivery_on_two_shipments(
    merchant, marketplace, now
) -> None:
    # GS1's shipping event carries no despatch advice, so nothing ties it to the receiving of
    # desadv 1152: both land on order 12345678, as two shipments. Not a parser bug to paper over.
    result = epcis_parse(_load("Example_9.6.1-ObjectEvent.jsonld"))
    _append_all(result.events, merchant=merchant, marketplace=marketplace, now=now)

    assert _shipments(merchant) == {
        NI_961_SHIPPING: ("12345678", "dispatched"),
        "1152": ("12345678", "delivered"),
    }


@pytest.mark.django_db
def test_dispatch_and_delivery_under_one_despatch_advice_are_one_shipment(
    merchant, marketplace, now
) -> None:
    document = _load("Example_9.6.1-ObjectEvent.jsonld")
    shipping, receiving = document["epcisBody"]["eventList"]
    # The sample's receiving event names desadv 1152; let its shipping event name it too, as a
    # sender that issues despatch advices would.
    desadv = receiving["bizTransactionList"][1]
    assert desadv["type"] == "desadv"
    shipping["bizTransactionList"].append(copy.deepcopy(desadv))

    result = epcis_parse(document)
    assert [(e.event["type"], e.event["ref"]) for e in result.events] == [
        (DISPATCHED, "1152"),
        (DELIVERED, "1152"),
    ]
    _append_all(result.events, merchant=merchant, marketplace=marketplace, now=now)

    shipment = Shipment.objects.get(merchant=merchant)
    assert (shipment.ref, shipment.order_ref, shipment.status) == ("1152", "12345678", "delivered")
    assert shipment.dispatched_at == datetime(2005, 4, 4, 2, 33, 31, 116000, tzinfo=UTC)
    assert shipment.delivered_at == datetime(2005, 4, 5, 2, 33, 31, 116000, tzinfo=UTC)


def test_parsing_leaves_the_document_untouched() -> None:
    document = _load("SensorDataExample1.jsonld")
    before = copy.deepcopy(document)
    epcis_parse(document)
    assert document == before


# --- hand-made documents -------------------------------------------------------------------

PO = {"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:0614141073467:PO-1234"}
DESADV = {"type": "desadv", "bizTransaction": "urn:epcglobal:cbv:bt:0614141073467:DA-77"}
EVENT_ID = "urn:uuid:6e1a5b8c-2f4d-4c1e-9a3b-7d2e8f0c1b2a"
ROOT = "/epcisBody/eventList/0"


def _event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": EVENT_ID,
        "eventTime": "2024-03-01T10:00:00.000+01:00",
        "eventTimeZoneOffset": "+01:00",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "bizTransactionList": [dict(PO), dict(DESADV)],
    }
    event.update(fields)
    return {key: value for key, value in event.items() if value is not MISSING}


def _document(*events: object) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-03-01T12:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def _one(**fields: Any) -> EpcisEvent | EpcisIgnored:
    result = epcis_parse(_document(_event(**fields)))
    [read] = result.events + result.ignored  # type: ignore[operator]
    return read


def _made(**fields: Any) -> dict[str, Any]:
    read = _one(**fields)
    assert isinstance(read, EpcisEvent), read
    assert read.pointer == ROOT
    return read.event


def _reason(**fields: Any) -> str:
    read = _one(**fields)
    assert isinstance(read, EpcisIgnored), read
    assert read.pointer == ROOT
    return read.reason


def _rejected(document: object, code: str, pointer: str, message: str = "") -> EpcisRejected:
    with pytest.raises(EpcisRejected) as caught:
        epcis_parse(document)
    assert (caught.value.code, caught.value.pointer) == (code, pointer), caught.value
    assert message in caught.value.message
    return caught.value


def test_a_shipping_event_becomes_a_dispatch() -> None:
    assert _made() == {
        "type": DISPATCHED,
        "ref": "DA-77",
        "occurred_at": "2024-03-01T09:00:00.000000Z",
        "data": {"order_ref": "PO-1234"},
    }


def test_rejection_is_a_ledger_error_with_one_located_error() -> None:
    error = _rejected([], "epcis_not_a_document", "")
    assert isinstance(error, LedgerError)
    assert [(e.pointer, e.message) for e in error.errors] == [("", error.message)]


# Documents


@pytest.mark.parametrize("document", [None, [], "EPCISDocument", 7, [_event()]])
def test_not_an_object_is_not_a_document(document: object) -> None:
    _rejected(document, "epcis_not_a_document", "", "must be a JSON object")


@pytest.mark.parametrize("kind", [MISSING, "EPCISMasterDataDocument", "epcisdocument", None, 1])
def test_wrong_document_type(kind: object) -> None:
    document = _document(_event())
    if kind is MISSING:
        del document["type"]
    else:
        document["type"] = kind
    _rejected(document, "epcis_not_a_document", "/type", '"EPCISDocument" or')


@pytest.mark.parametrize(
    ("body", "code", "pointer"),
    [
        (MISSING, "epcis_not_a_document", "/epcisBody"),
        ([_event()], "epcis_not_a_document", "/epcisBody"),
        ({}, "epcis_no_events", "/epcisBody/eventList"),
        ({"eventList": None}, "epcis_no_events", "/epcisBody/eventList"),
        ({"eventList": []}, "epcis_no_events", "/epcisBody/eventList"),
        ({"eventList": {"0": _event()}}, "epcis_not_a_document", "/epcisBody/eventList"),
    ],
)
def test_body_without_an_event_list(body: object, code: str, pointer: str) -> None:
    document = _document()
    if body is MISSING:
        del document["epcisBody"]
    else:
        document["epcisBody"] = body
    _rejected(document, code, pointer)


def test_at_most_a_thousand_events() -> None:
    inspecting = _event(bizStep="inspecting")
    result = epcis_parse(_document(*[inspecting] * MAX_EVENTS))
    assert (len(result.events), len(result.ignored)) == (0, 1000)

    _rejected(
        _document(*[inspecting] * (MAX_EVENTS + 1)),
        "epcis_too_many_events",
        "/epcisBody/eventList",
        "holds 1001 events; send at most 1000",
    )


@pytest.mark.parametrize("event", ["shipping", None, 3, [_event()]])
def test_an_event_that_is_not_an_object_refuses_the_document(event: object) -> None:
    _rejected(
        _document(_event(), event),
        "epcis_event_not_an_object",
        "/epcisBody/eventList/1",
        "must be a JSON object",
    )


def test_query_document_events_are_read_from_its_results_body() -> None:
    document = {
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "epcisBody": {
            "queryResults": {
                "queryName": "SimpleEventQuery",
                "resultsBody": {"eventList": [_event(bizStep="inspecting"), _event()]},
            }
        },
    }
    result = epcis_parse(document)
    base = "/epcisBody/queryResults/resultsBody/eventList"
    assert [e.pointer for e in result.events] == [f"{base}/1"]
    assert [i.pointer for i in result.ignored] == [f"{base}/0"]

    document["epcisBody"] = {"eventList": [_event()]}
    _rejected(document, "epcis_not_a_document", "/epcisBody/queryResults", "is missing")


def test_no_shipment_event_at_all_is_a_result_not_a_refusal() -> None:
    result = epcis_parse(_document(_event(bizStep="inspecting"), _event(bizTransactionList=[])))
    assert result.events == []
    assert [i.pointer for i in result.ignored] == [ROOT, "/epcisBody/eventList/1"]


# Business steps


@pytest.mark.parametrize(
    ("word", "event_type"),
    [("shipping", DISPATCHED), ("receiving", DELIVERED), ("returning", RETURNED)],
)
@pytest.mark.parametrize(
    "spelling",
    [
        "{}",
        "cbv:BizStep-{}",
        "urn:epcglobal:cbv:bizstep:{}",
        "https://ref.gs1.org/cbv/BizStep-{}",
        "http://ref.gs1.org/cbv/BizStep-{}",
    ],
)
def test_biz_step_spellings(word: str, event_type: str, spelling: str) -> None:
    event = _made(bizStep=spelling.format(word))
    assert event["type"] == event_type
    assert event["data"] == {"order_ref": "PO-1234"}  # carrier is never guessed


@pytest.mark.parametrize(
    ("biz_step", "fragment"),
    [
        ("inspecting", f'bizStep "inspecting" {NOT_RECORDED}'),
        ("void_shipping", f'bizStep "void_shipping" {NOT_RECORDED}'),
        ("cbv:BizStep-departing", f'bizStep "cbv:BizStep-departing" {NOT_RECORDED}'),
        (
            "urn:epcglobal:cbv:bizstep:transporting",
            f'bizStep "urn:epcglobal:cbv:bizstep:transporting" {NOT_RECORDED}',
        ),
        (
            "http://example.org/bizstep/shipping",
            'bizStep "http://example.org/bizstep/shipping" is not a CBV business step',
        ),
        ("Shipping", 'bizStep "Shipping" is not a CBV business step'),
        ("shipping ", 'bizStep "shipping " is not a CBV business step'),
        ("https://ref.gs1.org/cbv/BizStep-", "is not a CBV business step"),
        ("https://ref.gs1.org/cbv/BTT-po", "is not a CBV business step"),
        ("", 'bizStep "" is not a CBV business step'),
        (7, "bizStep 7 is not a CBV business step"),
        (["shipping"], 'bizStep ["shipping"] is not a CBV business step'),
        (MISSING, "it has no bizStep"),
        (None, "it has no bizStep"),
    ],
)
def test_other_biz_steps_are_ignored_by_name(biz_step: object, fragment: str) -> None:
    assert fragment in _reason(bizStep=biz_step)


def test_only_the_biz_step_decides() -> None:
    assert _made(bizStep="receiving", disposition="returned")["type"] == DELIVERED
    assert _made(bizStep="returning", disposition="in_progress")["type"] == RETURNED


def test_a_long_or_unencodable_biz_step_is_shown_shortened_and_encodable() -> None:
    reason = _reason(bizStep="x" * 10_000)
    assert len(reason) < 300
    reason = _reason(bizStep="ship\ud800\x00")
    assert "\\ud800" in reason and "\\u0000" in reason
    reason.encode("utf-8")


@pytest.mark.parametrize(
    "kind",
    [
        "ObjectEvent",
        "AggregationEvent",
        "TransactionEvent",
        "TransformationEvent",
        "AssociationEvent",
    ],
)
def test_every_epcis_event_type_is_read_alike(kind: str) -> None:
    assert _made(type=kind)["ref"] == "DA-77"


@pytest.mark.parametrize(
    ("kind", "shown"), [("ExtensionEvent", '"ExtensionEvent"'), (MISSING, "null")]
)
def test_unknown_event_types_are_ignored(kind: object, shown: str) -> None:
    assert f"event type {shown} is not one of the EPCIS 2.0 event types" in _reason(type=kind)


def test_error_declarations_are_ignored_not_applied() -> None:
    declaration = {"declarationTime": "2024-03-02T10:00:00Z", "reason": "incorrect_data"}
    assert _reason(errorDeclaration=declaration) == ERROR_DECLARATION_REASON
    # It is ignored before anything else is read, bad time included.
    assert _reason(errorDeclaration=declaration, eventTime="soon") == ERROR_DECLARATION_REASON


# Purchase orders and despatch advices


BTT_SPELLINGS = [
    "{}",
    "cbv:BTT-{}",
    "urn:epcglobal:cbv:btt:{}",
    "https://ref.gs1.org/cbv/BTT-{}",
    "http://ref.gs1.org/cbv/BTT-{}",
]


@pytest.mark.parametrize("spelling", BTT_SPELLINGS)
def test_purchase_order_type_spellings(spelling: str) -> None:
    po = {"type": spelling.format("po"), "bizTransaction": PO["bizTransaction"]}
    assert _made(bizTransactionList=[po, DESADV])["data"] == {"order_ref": "PO-1234"}


@pytest.mark.parametrize("spelling", BTT_SPELLINGS)
def test_despatch_advice_type_spellings(spelling: str) -> None:
    desadv = {"type": spelling.format("desadv"), "bizTransaction": DESADV["bizTransaction"]}
    assert _made(bizTransactionList=[desadv, PO])["ref"] == "DA-77"


@pytest.mark.parametrize(
    ("identifier", "last_segment"),
    [
        ("urn:epcglobal:cbv:bt:0614141073467:PO-1234", "PO-1234"),
        ("http://transaction.acme.com/po/12345678", "12345678"),
        ("urn:epc:id:gdti:0614141.00001.1618034", "0614141.00001.1618034"),
        ("https://example.com/orders?id=7", "orders?id=7"),
        ("PO-9", "PO-9"),
    ],
)
def test_identifiers_are_cut_to_their_last_segment(identifier: str, last_segment: str) -> None:
    po = {"type": "po", "bizTransaction": identifier}
    desadv = {"type": "desadv", "bizTransaction": identifier}
    assert _made(bizTransactionList=[po])["data"] == {"order_ref": last_segment}
    assert _made(bizTransactionList=[po, desadv])["ref"] == last_segment


@pytest.mark.parametrize(
    "transactions",
    [
        MISSING,
        [],
        [DESADV],
        [{"type": "inv", "bizTransaction": "urn:epcglobal:cbv:bt:9520011111116:A123"}],
        [{"bizTransaction": PO["bizTransaction"]}],  # untyped
        [{"type": "urn:gs1:epcisapp:rail:btt:passage", "bizTransaction": "http://r/p/xyz"}],
        [{"type": "purchase_order", "bizTransaction": PO["bizTransaction"]}],
        [{"type": "http://example.org/btt/po", "bizTransaction": PO["bizTransaction"]}],
    ],
)
def test_without_a_purchase_order_the_event_is_ignored(transactions: object) -> None:
    assert _reason(bizTransactionList=transactions) == NO_PURCHASE_ORDER_REASON


def test_one_order_named_twice_is_one_order() -> None:
    same = {"type": "cbv:BTT-po", "bizTransaction": "http://transaction.acme.com/po/PO-1234"}
    assert _made(bizTransactionList=[PO, same, DESADV])["data"] == {"order_ref": "PO-1234"}


def test_two_orders_are_ignored() -> None:
    other = {"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:0614141073467:PO-5678"}
    reason = _reason(bizTransactionList=[PO, other, DESADV])
    assert 'name 2 orders ("PO-1234", "PO-5678"); a shipment belongs to exactly one' in reason


def test_two_despatch_advices_are_ignored() -> None:
    other = {"type": "desadv", "bizTransaction": "urn:epcglobal:cbv:bt:0614141073467:DA-78"}
    reason = _reason(bizTransactionList=[PO, DESADV, other])
    assert 'name 2 shipments ("DA-77", "DA-78"); one event records one shipment' in reason


@pytest.mark.parametrize(
    ("event_id", "ref"),
    [
        (EVENT_ID, "6e1a5b8c-2f4d-4c1e-9a3b-7d2e8f0c1b2a"),
        ("ni:///sha-256;abc123?ver=CBV2.0", "sha-256;abc123?ver=CBV2.0"),
        ("https://id.example.org/event/42", "42"),
    ],
)
def test_without_a_despatch_advice_the_event_id_names_the_shipment(event_id: str, ref: str) -> None:
    assert _made(eventID=event_id, bizTransactionList=[PO])["ref"] == ref


def test_without_despatch_advice_or_event_id_a_hash_names_the_shipment() -> None:
    sensors = [{"sensorReport": [{"type": "Temperature", "value": 26.2, "uom": "CEL"}]}]
    fields = {"eventID": MISSING, "bizTransactionList": [PO], "sensorElementList": sensors}
    ref = _made(**fields)["ref"]
    assert re.fullmatch("epcis-[0-9a-f]{16}", ref)
    # Stable across parses and key order; another event hashes elsewhere.
    assert _made(**dict(reversed(fields.items())))["ref"] == ref
    assert _made(**fields, readPoint={"id": "urn:epc:id:sgln:0614141.07346.1234"})["ref"] != ref


# Event time


@pytest.mark.parametrize(
    ("event_time", "zone_offset", "occurred_at"),
    [
        ("2024-03-01T10:00:00.000+01:00", "+01:00", "2024-03-01T09:00:00.000000Z"),
        ("2024-03-01T09:00:00Z", "+01:00", "2024-03-01T09:00:00.000000Z"),
        ("2024-03-01T09:00:00Z", "-06:00", "2024-03-01T09:00:00.000000Z"),  # offset is display
        ("2024-03-01T09:00:00.5Z", MISSING, "2024-03-01T09:00:00.500000Z"),
        ("2024-03-01T09:00:00.123456789Z", MISSING, "2024-03-01T09:00:00.123456Z"),
        ("2024-03-01t09:00:00z", MISSING, "2024-03-01T09:00:00.000000Z"),
        ("2024-03-01T10:00:00", "+01:00", "2024-03-01T09:00:00.000000Z"),
        ("2024-03-01T03:00:00.25", "-06:00", "2024-03-01T09:00:00.250000Z"),
    ],
)
def test_event_time_with_its_offset(event_time: str, zone_offset: object, occurred_at: str) -> None:
    event = _made(eventTime=event_time, eventTimeZoneOffset=zone_offset)
    assert event["occurred_at"] == occurred_at


@pytest.mark.parametrize(
    ("event_time", "zone_offset", "field", "message"),
    [
        (MISSING, "+01:00", "eventTime", "eventTime is required"),
        (None, "+01:00", "eventTime", "eventTime is required"),
        (1709283600, "+01:00", "eventTime", "eventTime 1709283600 is not an RFC 3339 timestamp"),
        ("2024-03-01", "+01:00", "eventTime", "is not an RFC 3339 timestamp"),
        ("2024-03-01 09:00:00Z", "+01:00", "eventTime", "is not an RFC 3339 timestamp"),
        ("2024-03-01T09:00:00+0100", "+01:00", "eventTime", "is not an RFC 3339 timestamp"),
        (
            "\uff12\uff10\uff12\uff14-03-01T09:00:00Z",
            "+01:00",
            "eventTime",
            "is not an RFC 3339 timestamp",
        ),
        ("2024-02-30T09:00:00Z", "+01:00", "eventTime", "is not a real point in time"),
        ("2024-03-01T25:00:00Z", "+01:00", "eventTime", "is not a real point in time"),
        ("2024-03-01T09:00:00+25:00", "+01:00", "eventTime", "is not a real point in time"),
        ("0001-01-01T00:00:00+01:00", "+01:00", "eventTime", "is not a real point in time"),
        ("2024-03-01T09:00:00", MISSING, "eventTime", "no UTC offset"),
        ("2024-03-01T09:00:00", "0100", "eventTimeZoneOffset", "must be written +hh:mm"),
        ("2024-03-01T09:00:00", 60, "eventTimeZoneOffset", "must be written +hh:mm"),
        ("1999-12-31T23:00:00Z", "+01:00", "eventTime", "Must lie between 2000 and 2100"),
    ],
)
def test_a_bad_event_time_refuses_the_document(
    event_time: object, zone_offset: object, field: str, message: str
) -> None:
    document = _document(_event(bizStep="inspecting"), _event())
    document["epcisBody"]["eventList"][1] = _event(
        eventTime=event_time, eventTimeZoneOffset=zone_offset
    )
    _rejected(document, "epcis_bad_event_time", f"/epcisBody/eventList/1/{field}", message)


def test_a_bad_time_on_an_ignored_event_is_not_read() -> None:
    assert NOT_RECORDED in _reason(bizStep="inspecting", eventTime="yesterday")


# Content the ledger refuses, located in the EPCIS document


@pytest.mark.parametrize(
    ("transactions", "pointer", "message"),
    [
        (
            [{"type": "po", "bizTransaction": "urn:x:" + "P" * 129}, DESADV],
            "/bizTransactionList/0/bizTransaction",
            'The order_ref "PPP',
        ),
        (
            [PO, {"type": "desadv", "bizTransaction": "urn:x:" + "D" * 129}],
            "/bizTransactionList/1/bizTransaction",
            "Must be at most 128 characters.",
        ),
        (
            [{"type": "po", "bizTransaction": "http://transaction.acme.com/po/"}],
            "/bizTransactionList/0/bizTransaction",
            'The order_ref "" taken from here: Must not be blank.',
        ),
        (
            [{"type": "po", "bizTransaction": "urn:x:PO 1 "}],
            "/bizTransactionList/0/bizTransaction",
            "Must not start or end with whitespace.",
        ),
        ("PO-1234", "/bizTransactionList", "must be an array"),
        ([PO, "DA-77"], "/bizTransactionList/1", "must be an object"),
        ([{"type": "po", "bizTransaction": 1234}], "/bizTransactionList/0/bizTransaction", ""),
        ([{"type": "po"}], "/bizTransactionList/0/bizTransaction", "must be a string"),
        ([{"type": ["po"], "bizTransaction": "PO-1"}], "/bizTransactionList/0/type", "string"),
    ],
)
def test_unusable_biz_transactions_refuse_the_document(
    transactions: object, pointer: str, message: str
) -> None:
    document = _document(_event(bizTransactionList=transactions))
    _rejected(document, "epcis_invalid_content", ROOT + pointer, message)


@pytest.mark.parametrize(
    ("event_id", "message"),
    [
        (42, "eventID must be a string."),
        ("urn:uuid:abc\u202e", "Must not contain control characters"),
        ("urn:uuid:", 'The shipment ref "" taken from here: Must not be blank.'),
    ],
)
def test_an_unusable_event_id_refuses_the_document(event_id: object, message: str) -> None:
    document = _document(_event(eventID=event_id, bizTransactionList=[PO]))
    _rejected(document, "epcis_invalid_content", f"{ROOT}/eventID", message)


def test_malformed_biz_transactions_on_an_ignored_event_are_not_read() -> None:
    assert NOT_RECORDED in _reason(bizStep="inspecting", bizTransactionList="PO-1234")
