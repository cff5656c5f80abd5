"""OpenAPI descriptions of the global log's endpoints: checkpoints, proofs, cosignatures."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers

from config.api.inputs import MAX_CURSOR
from config.api.schema import (
    INVALID_QUERY,
    PROBLEM,
    RATE_LIMITED,
    SIGNED_HEADERS,
    TOO_LARGE,
    UNAUTHENTICATED,
    UNSIGNED,
    WRONG_CONTENT_TYPE,
    problem,
)
from ledger.api.schema import HEX64, SELLER_ID_HELP

B64_HASH = r"^[A-Za-z0-9+/]{43}=$"
_SIZE = {"type": "integer", "minimum": 1, "maximum": MAX_CURSOR}


class InclusionProofSerializer(serializers.Serializer[Any]):
    merchant = serializers.CharField(help_text=SELLER_ID_HELP)
    seq = serializers.IntegerField(min_value=1)
    hash = serializers.RegexField(HEX64, help_text="The entry's hash; leaf = SHA-256(0x00||hash).")
    log_index = serializers.IntegerField(min_value=0)
    tree_size = serializers.IntegerField(min_value=1)
    proof = serializers.ListField(child=serializers.RegexField(B64_HASH))
    checkpoint = serializers.CharField(
        allow_null=True, help_text="The signed checkpoint of tree_size, with its cosignatures."
    )


class ConsistencyProofSerializer(serializers.Serializer[Any]):
    first = serializers.IntegerField(min_value=1)
    second = serializers.IntegerField(min_value=1)
    proof = serializers.ListField(child=serializers.RegexField(B64_HASH))


class CosignatureInSerializer(serializers.Serializer[Any]):
    tree_size = serializers.IntegerField(min_value=0)
    cosignature = serializers.CharField(
        help_text="One note signature line: em dash, space, key name, space, base64(key id ||"
        " timestamp || Ed25519 signature) (c2sp.org/tlog-cosignature)."
    )


class CosignatureOutSerializer(serializers.Serializer[Any]):
    tree_size = serializers.IntegerField(min_value=0)
    witness = serializers.CharField()
    cosigned_at = serializers.DateTimeField()


_READ = {
    (401, PROBLEM): UNAUTHENTICATED,
    (422, PROBLEM): INVALID_QUERY,
    (429, PROBLEM): RATE_LIMITED,
}
_EXAMPLE_NOTE = (
    "chainfin.example/log\n42\nqUR1p2CJpn0Rzbt2HMd8GaFh1V0q6UtrQzmXUL+B8s0=\n\n"
    "\u2014 chainfin.example/log 3ISsk0rBv7dQmHyN0p1d8Sk2QZ6O3Fq2…\n"
)

CHECKPOINT_GET: dict[str, Any] = {
    "operation_id": "log_checkpoint",
    "summary": "The latest signed checkpoint of the global log (C2SP signed note)",
    "description": "text/plain: origin, tree size and base64 RFC 6962 root, a blank line, the "
    "bank's Ed25519 signature line and every witness's cosignature line "
    "(c2sp.org/tlog-checkpoint, c2sp.org/tlog-cosignature). The bank's verifier key is at "
    "/.well-known/chainfin-log-key. Any API key may read it.",
    "parameters": [
        OpenApiParameter(
            "tree_size", _SIZE, description="A checkpoint signed at this size (latest if absent)."
        )
    ],
    "responses": {
        (200, "text/plain"): OpenApiTypes.STR,
        (404, PROBLEM): problem("No checkpoint (at that size) yet."),
        **_READ,
    },
    "examples": [OpenApiExample("Checkpoint", value=_EXAMPLE_NOTE, response_only=True)],
}
INCLUSION_GET: dict[str, Any] = {
    "operation_id": "log_inclusion_proof",
    "summary": "Proof that one of your merchants' entries is in the log",
    "description": "RFC 6962 inclusion proof of entry `seq` of merchant `merchant` in the tree "
    "of `tree_size` (the latest checkpoint's when absent). Marketplace keys, own merchants only.",
    "parameters": [
        OpenApiParameter("merchant", OpenApiTypes.STR, required=True, description=SELLER_ID_HELP),
        OpenApiParameter("seq", _SIZE, required=True, description="The entry's seq."),
        OpenApiParameter("tree_size", _SIZE, description="Tree size (latest checkpoint's)."),
    ],
    "responses": {
        200: InclusionProofSerializer,
        (401, PROBLEM): UNAUTHENTICATED,
        (403, PROBLEM): problem("A merchant key: this operation takes marketplace keys."),
        (404, PROBLEM): problem("No such merchant among yours, or no such entry."),
        (409, PROBLEM): problem("Not in the log yet (the sequencer runs every second)."),
        (422, PROBLEM): problem("Invalid query, or the tree of tree_size does not hold it."),
        (429, PROBLEM): RATE_LIMITED,
    },
}
CONSISTENCY_GET: dict[str, Any] = {
    "operation_id": "log_consistency_proof",
    "summary": "Proof that the tree of `second` entries extends the tree of `first`",
    "parameters": [
        OpenApiParameter("first", _SIZE, required=True, description="The earlier tree size."),
        OpenApiParameter("second", _SIZE, required=True, description="The later tree size."),
    ],
    "responses": {200: ConsistencyProofSerializer, **_READ},
}
COSIGNATURE_POST: dict[str, Any] = {
    "operation_id": "log_cosignature_create",
    "summary": "A registered witness's cosignature of a checkpoint",
    "description": "Stored once its Ed25519 signature verifies over the checkpoint of "
    "`tree_size` with the witness key registered under its name; repeated, it is not stored "
    "twice. The checkpoint is then served with its line.",
    "request": CosignatureInSerializer,
    "parameters": SIGNED_HEADERS,
    "responses": {
        201: CosignatureOutSerializer,
        (400, PROBLEM): problem("Malformed body or no Idempotency-Key."),
        (401, PROBLEM): UNSIGNED,
        (404, PROBLEM): problem("Not used: a refused cosignature is a 422."),
        (409, PROBLEM): problem("The same Idempotency-Key is in flight."),
        (413, PROBLEM): TOO_LARGE,
        (415, PROBLEM): WRONG_CONTENT_TYPE,
        (422, PROBLEM): problem("No such checkpoint or witness, or the signature is wrong."),
        (429, PROBLEM): RATE_LIMITED,
    },
}
