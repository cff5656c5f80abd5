"""The global log over the API: checkpoints, inclusion and consistency proofs, cosignatures.

Checkpoints and consistency proofs say nothing about any party's entries, so any API key reads
them (witnesses among marketplaces and auditors); an inclusion proof names an entry, so only
the marketplace that serves its merchant gets it.
"""

from __future__ import annotations

import base64

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from config.api.authentication import SignedApiKeyAuthentication
from config.api.idempotency import idempotent
from config.api.inputs import MAX_CURSOR, int_query_param
from config.api.parsers import StrictJSONParser
from config.api.permissions import IsAnyApiKey, api_principal
from config.api.problems import ApiProblem, RequestInvalid
from config.api.responses import json_response
from config.api.throttling import CredentialRateThrottle
from ledger.api import log_schema
from ledger.api.views import MarketplaceApi
from ledger.exceptions import FieldError
from ledger.log.checkpoints import cosignature_add, log_verifier
from ledger.log.proofs import (
    checkpoint_at,
    checkpoint_served,
    consistency_proof,
    inclusion_proof,
)
from ledger.selectors import entry_at


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


def _required(request: Request, name: str) -> int:
    if name not in request.query_params:
        raise RequestInvalid([FieldError(f"/{name}", "Required.")])
    return int_query_param(request, name, 0, 1, MAX_CURSOR)


def log_key(request: HttpRequest) -> HttpResponse:
    """The bank's verifier key (a c2sp.org/signed-note vkey), public, at a well-known URL."""
    return HttpResponse(log_verifier().vkey + "\n", content_type="text/plain; charset=utf-8")


class AnyKeyApi(APIView):
    authentication_classes = [SignedApiKeyAuthentication]
    permission_classes = [IsAnyApiKey]
    throttle_classes = [CredentialRateThrottle]
    parser_classes = [StrictJSONParser]


class CheckpointApi(AnyKeyApi):
    @extend_schema(**log_schema.CHECKPOINT_GET)
    def get(self, request: Request) -> HttpResponse:
        size = int_query_param(request, "tree_size", -1, 1, MAX_CURSOR)
        checkpoint = checkpoint_at(tree_size=None if size < 0 else size)
        if checkpoint is None:
            title = f"No checkpoint at tree size {size}." if size >= 0 else "No checkpoint yet."
            raise ApiProblem(404, "checkpoint_not_found", title)
        return HttpResponse(checkpoint_served(checkpoint), content_type="text/plain; charset=utf-8")


class InclusionProofApi(MarketplaceApi):
    @extend_schema(**log_schema.INCLUSION_GET)
    def get(self, request: Request) -> HttpResponse:
        seller_id = request.query_params.get("merchant", "")
        if not seller_id:
            raise RequestInvalid([FieldError("/merchant", "Required: your seller id.")])
        seq = _required(request, "seq")
        size = int_query_param(request, "tree_size", -1, 1, MAX_CURSOR)
        merchant = self.merchant(request, seller_id)
        entry = entry_at(merchant=merchant, seq=seq)
        if entry is None:
            raise ApiProblem(404, "entry_not_found", "No such entry.")
        proof = inclusion_proof(entry=entry, tree_size=None if size < 0 else size)
        response = json_response(
            {
                "merchant": seller_id,
                "seq": seq,
                "hash": proof.entry_hash,
                "log_index": proof.log_index,
                "tree_size": proof.tree_size,
                "proof": _b64(proof.proof),
                "checkpoint": proof.checkpoint,
            }
        )
        return response


class ConsistencyProofApi(AnyKeyApi):
    @extend_schema(**log_schema.CONSISTENCY_GET)
    def get(self, request: Request) -> HttpResponse:
        first, second = _required(request, "first"), _required(request, "second")
        proof = consistency_proof(first=first, second=second)
        return json_response({"first": first, "second": second, "proof": _b64(proof)})


class CosignatureCreateApi(AnyKeyApi):
    @extend_schema(**log_schema.COSIGNATURE_POST)
    def post(self, request: Request) -> HttpResponse:
        scope = api_principal(request).scope
        return idempotent(request, scope, lambda: self._create(request))

    def _create(self, request: Request) -> HttpResponse:
        data = request.data
        if (
            not isinstance(data, dict)
            or set(data) != {"tree_size", "cosignature"}
            or type(data["tree_size"]) is not int
            or not isinstance(data["cosignature"], str)
            or len(data["cosignature"]) > 400
        ):
            raise RequestInvalid(
                [FieldError("", 'The body must be {"tree_size": int, "cosignature": "— …"}.')]
            )
        stored = cosignature_add(
            tree_size=data["tree_size"], line=data["cosignature"], now=timezone.now()
        )
        return json_response(
            {
                "tree_size": stored.checkpoint_id,
                "witness": stored.witness.name,
                "cosigned_at": stored.cosigned_at.isoformat(),
            },
            status=201,
        )
