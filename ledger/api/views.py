"""The marketplace ingest API: thin views that authenticate, scope, call one service, render.

Every view here takes marketplace keys only (IsMarketplaceKey): a merchant key gets 403.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import orjson
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api.authentication import SignedApiKeyAuthentication
from config.api.idempotency import idempotent
from config.api.inputs import MAX_CURSOR, int_query_param, page_limit, ref_query_param
from config.api.parsers import JSONLDParser, RawTextXMLParser, RawXMLParser, StrictJSONParser
from config.api.permissions import IsMarketplaceKey, api_principal, calling_marketplace
from config.api.problems import ApiProblem, RequestInvalid
from config.api.responses import json_response
from config.api.throttling import CredentialRateThrottle
from ledger.api import schema
from ledger.events import ValidEvent, event_parse, format_timestamp
from ledger.exceptions import EventConflict, EventInvalid, FieldError
from ledger.formats.epcis import epcis_parse
from ledger.formats.ubl import ubl_parse
from ledger.models import Entry
from ledger.selectors import (
    chain_head,
    entries_page,
    entry_at,
    merchant_for_tax_ids,
    merchant_ids_by_seller_id,
    merchants_by_seller_id,
    seller_id_of,
)
from ledger.services import NewEntry, Receipt, entries_append
from merchants.models import Marketplace, Merchant

MAX_EVENTS = schema.MAX_EVENTS
_INCLUSION = "/api/v1/proofs/inclusion"
MAX_XML_BYTES = 1_048_576


def _not_found(what: str, pointer: str = "") -> ApiProblem:
    errors = [FieldError(pointer, f"No {what} of yours.")] if pointer else []
    return ApiProblem(404, "merchant_not_found", f"No such {what}.", errors=errors)


class MarketplaceApi(APIView):
    authentication_classes = [SignedApiKeyAuthentication]
    permission_classes = [IsMarketplaceKey]
    throttle_classes = [CredentialRateThrottle]
    parser_classes = [StrictJSONParser]

    def merchant(self, request: Request, seller_id: str) -> Merchant:
        marketplace = calling_marketplace(request)
        merchant = merchants_by_seller_id(marketplace=marketplace, seller_ids=[seller_id])
        if seller_id not in merchant:
            raise _not_found("merchant")
        return merchant[seller_id]


def _receipts(receipts: Sequence[Receipt], seller_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Each receipt names the merchant twice: as the marketplace does (its seller id, which
    ``seller_ids[i]`` holds for receipt ``i``) and as the chain does (Chainfin's mer_… id)."""
    # Its place in the global log comes within a second, from the sequencer. A batch names a few
    # merchants many times: each one's part of the link is encoded once.
    log_of = {s: f"{_INCLUSION}?{urlencode({'merchant': s})}&seq=" for s in set(seller_ids)}
    return [
        {
            "merchant": seller_id,
            "merchant_id": r.merchant,
            "seq": r.seq,
            "hash": r.hash,
            "ref": r.ref,
            "type": r.type,
            "log": f"{log_of[seller_id]}{r.seq}",
        }
        for r, seller_id in zip(receipts, seller_ids, strict=True)
    ]


def _append(
    marketplace: Marketplace,
    entries: list[NewEntry],
    pointers: Sequence[str],
    seller_ids: Sequence[str],
) -> HttpResponse:
    """Append and answer 201 with receipts; errors point into the request, not the batch.

    ``pointers[i]`` locates entry ``i`` in the request body ("/events/3", "" for a whole
    document), so a refusal names the field the sender wrote; ``seller_ids[i]`` is the seller
    id its merchant goes by at ``marketplace``.
    """
    try:
        receipts = entries_append(source=marketplace.code, entries=entries, now=timezone.now())
    except (EventInvalid, EventConflict) as exc:
        raise exc.relocated(pointers) from None
    return json_response({"receipts": _receipts(receipts, seller_ids)}, status=201)


class EventBatchCreateApi(MarketplaceApi):
    @extend_schema(**schema.EVENTS_POST)
    def post(self, request: Request) -> HttpResponse:
        marketplace, scope = calling_marketplace(request), api_principal(request).scope
        return idempotent(request, scope, lambda: self._create(request, marketplace))

    def _create(self, request: Request, marketplace: Marketplace) -> HttpResponse:
        raw_events = _event_list(request.data)
        seller_ids = {
            raw["merchant"]
            for raw in raw_events
            if isinstance(raw, dict) and isinstance(raw.get("merchant"), str)
        }
        merchant_ids = merchant_ids_by_seller_id(marketplace=marketplace, seller_ids=seller_ids)
        entries, named, errors = [], [], []
        for index, raw in enumerate(raw_events):
            try:
                merchant_id, event = _one_event(raw, merchant_ids)
            except EventInvalid as exc:
                errors += exc.prefixed(f"/events/{index}").errors
                continue
            except ApiProblem as problem:
                problem.errors = [FieldError(f"/events/{index}/merchant", problem.title)]
                raise problem from None
            entries.append(NewEntry(merchant_id=merchant_id, event=event))
            named.append(raw["merchant"])
        if errors:
            raise EventInvalid(errors)
        return _append(marketplace, entries, [f"/events/{i}" for i in range(len(entries))], named)


def _event_list(data: Any) -> list[Any]:
    if not isinstance(data, dict) or set(data) != {"events"}:
        raise RequestInvalid([FieldError("", 'The body must be {"events": [...]}.')])
    events = data["events"]
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
        raise RequestInvalid(
            [FieldError("/events", f"Must be a list of 1 to {MAX_EVENTS:,} events.")]
        )
    return events


def _one_event(raw: Any, merchant_ids: dict[str, int]) -> tuple[int, ValidEvent]:
    if not isinstance(raw, dict):
        raise EventInvalid([FieldError("", "An event must be a JSON object.")])
    seller_id = raw.get("merchant")
    if not isinstance(seller_id, str):
        event_errors: list[FieldError] = []
        try:
            event_parse({k: v for k, v in raw.items() if k != "merchant"})
        except EventInvalid as exc:
            event_errors = exc.errors
        raise EventInvalid([FieldError("/merchant", "Must be your seller id."), *event_errors])
    if seller_id not in merchant_ids:
        raise _not_found("merchant")
    return merchant_ids[seller_id], event_parse({k: v for k, v in raw.items() if k != "merchant"})


class ChainHeadApi(MarketplaceApi):
    @extend_schema(**schema.CHAIN_GET)
    def get(self, request: Request, seller_id: str) -> HttpResponse:
        merchant = self.merchant(request, seller_id)
        head = chain_head(merchant=merchant)
        return json_response(
            {
                "merchant": seller_id,
                "merchant_id": merchant.public_id,
                "seq": head.head_seq,
                "hash": head.head_hash,
                "count": head.head_seq,
            }
        )


def _entry(entry: Entry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "hash": entry.hash,
        "prev_hash": entry.prev_hash,
        "type": entry.type,
        "ref": entry.external_ref,
        "source": entry.source,
        "occurred_at": format_timestamp(entry.occurred_at),
        "recorded_at": format_timestamp(entry.recorded_at),
        "body": bytes(entry.body).decode(),
    }


class EntryListApi(MarketplaceApi):
    @extend_schema(**schema.ENTRIES_GET)
    def get(self, request: Request, seller_id: str) -> HttpResponse:
        merchant = self.merchant(request, seller_id)
        after_seq = int_query_param(request, "after_seq", 0, 0, MAX_CURSOR)
        limit = page_limit(request)
        entries = entries_page(merchant=merchant, after_seq=after_seq, limit=limit)
        next_after = entries[-1].seq if len(entries) == limit else None
        return json_response(
            {"entries": [_entry(e) for e in entries], "next_after_seq": next_after}
        )


class EntryDetailApi(MarketplaceApi):
    @extend_schema(**schema.ENTRY_GET)
    def get(self, request: Request, seller_id: str, seq: int) -> HttpResponse:
        merchant = self.merchant(request, seller_id)
        entry = entry_at(merchant=merchant, seq=seq)
        if entry is None:
            raise ApiProblem(404, "entry_not_found", "No such entry.")
        return json_response(_entry(entry))


class UblInvoiceCreateApi(MarketplaceApi):
    parser_classes = [RawXMLParser, RawTextXMLParser]

    @extend_schema(**schema.UBL_POST)
    def post(self, request: Request) -> HttpResponse:
        marketplace, scope = calling_marketplace(request), api_principal(request).scope
        return idempotent(request, scope, lambda: self._create(request, marketplace))

    def _create(self, request: Request, marketplace: Marketplace) -> HttpResponse:
        # RawXMLParser hands over bytes; DRF skips the parser (and gives {}) for an empty body.
        raw = request.data if isinstance(request.data, bytes) else b""
        order_ref = ref_query_param(request, "order_ref") or None
        document = ubl_parse(raw, max_bytes=MAX_XML_BYTES, order_ref=order_ref)
        merchant = merchant_for_tax_ids(marketplace=marketplace, tax_ids=document.supplier_ids)
        if merchant is None:
            # 404 like an unknown seller id in /events: the supplier party is how a UBL document
            # names its merchant, and a marketplace must not learn whom another one serves. The
            # pointer says which part of the document named nobody of yours.
            party = f"/{document.document}/cac:AccountingSupplierParty/cac:Party"
            raise ApiProblem(
                404,
                "merchant_not_found",
                "No merchant of yours matches the supplier.",
                "None of the supplier party's identifiers is the tax id of a merchant of yours.",
                errors=[FieldError(party, "Not the tax id of a merchant of yours.")],
            )
        event = event_parse(document.event)
        seller_id = seller_id_of(marketplace=marketplace, merchant=merchant)
        entry = NewEntry(merchant_id=merchant.pk, event=event)
        return _append(marketplace, [entry], [""], [seller_id])


class EpcisCreateApi(MarketplaceApi):
    parser_classes = [StrictJSONParser, JSONLDParser]

    @extend_schema(**schema.EPCIS_POST)
    def post(self, request: Request) -> HttpResponse:
        marketplace, scope = calling_marketplace(request), api_principal(request).scope
        return idempotent(request, scope, lambda: self._create(request, marketplace))

    def _create(self, request: Request, marketplace: Marketplace) -> HttpResponse:
        seller_id = request.query_params.get("merchant", "")
        if not seller_id:
            raise RequestInvalid(
                [FieldError("/merchant", "Name the merchant: ?merchant=<seller id>.")]
            )
        merchant = self.merchant(request, seller_id)
        result = epcis_parse(request.data)
        ignored = [{"pointer": i.pointer, "detail": i.reason} for i in result.ignored]
        if not result.events:
            raise EventInvalid(
                [FieldError(i.pointer, i.reason) for i in result.ignored]
                or [
                    FieldError("/epcisBody/eventList", "No shipping, receiving or returning event.")
                ]
            )
        entries = [
            NewEntry(merchant_id=merchant.pk, event=event_parse(e.event)) for e in result.events
        ]
        pointers = [e.pointer for e in result.events]
        response = _append(marketplace, entries, pointers, [seller_id] * len(entries))
        body = orjson.loads(response.content) | {"ignored": ignored}
        return json_response(body, status=201)
