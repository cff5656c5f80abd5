"""OpenAPI pieces every API shares (drf-spectacular): the problem document, the signed-request
headers and paging parameters, each stating the limits the server enforces, so that a client
generated from the schema never sends what is refused."""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from config.api.inputs import DEFAULT_PAGE, MAX_CURSOR, MAX_PAGE, REF_SCHEMA

PROBLEM = "application/problem+json"
# As config.api.authentication and the idempotency check refuse them.
TIMESTAMP_SCHEMA = {"type": "string", "pattern": "^[0-9]{1,12}$"}
SIGNATURE_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 1024}
IDEMPOTENCY_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[ -~]+$",  # printable ASCII
}


class ProblemFieldSerializer(serializers.Serializer[Any]):
    pointer = serializers.CharField(help_text="RFC 6901 JSON pointer into the request.")
    detail = serializers.CharField()


class ProblemSerializer(serializers.Serializer[Any]):
    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.CharField(help_text="Machine-readable reason, e.g. validation_error.")
    detail = serializers.CharField(required=False)
    errors = ProblemFieldSerializer(many=True, required=False)  # type: ignore[assignment]


def problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(ProblemSerializer, description=description)


# The refusals every operation shares, described once.
UNAUTHENTICATED = problem("Missing, unknown or revoked API key.")
UNSIGNED = problem("Bad key, timestamp more than 300 s off, bad or reused signature.")
RATE_LIMITED = problem("Rate limit reached; see Retry-After.")
TOO_LARGE = problem("Body too large.")
WRONG_CONTENT_TYPE = problem("Wrong Content-Type.")
INVALID_QUERY = problem("Invalid query parameters (a pointer at each: /limit, /after).")

SIGNED_HEADERS = [
    OpenApiParameter(
        "Chainfin-Timestamp",
        TIMESTAMP_SCHEMA,
        OpenApiParameter.HEADER,
        required=True,
        description="Unix seconds; must be within 300 s of Chainfin's clock.",
    ),
    OpenApiParameter(
        "Chainfin-Signature",
        SIGNATURE_SCHEMA,
        OpenApiParameter.HEADER,
        required=True,
        description='v1=<hex HMAC-SHA256(signing_secret, "<ts>.<METHOD>.<path?query>.'
        '<hex SHA-256 of body>")>. Each signature is accepted once.',
    ),
    OpenApiParameter(
        "Idempotency-Key",
        IDEMPOTENCY_KEY_SCHEMA,
        OpenApiParameter.HEADER,
        required=True,
        description="1-255 printable ASCII characters. A retry with the same key and body gets "
        "the first response replayed; another body gets 422; while the first runs, 409.",
    ),
]
LIMIT = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
    description=f"Page size, 1 to {MAX_PAGE:,} ({DEFAULT_PAGE} when absent).",
)


def cursor_parameter(name: str, description: str) -> OpenApiParameter:
    """A numeric cursor: the last seq or id of the previous page."""
    return OpenApiParameter(
        name, {"type": "integer", "minimum": 0, "maximum": MAX_CURSOR}, description=description
    )


def ref_parameter(
    name: str, description: str, location: Literal["query", "path"] = "query"
) -> OpenApiParameter:
    """A ref in the query or the path: the same rules as a ref in a body."""
    return OpenApiParameter(name, REF_SCHEMA, location, description=description)
