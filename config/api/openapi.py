"""Teach drf-spectacular how Chainfin authenticates, so the docs show it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SignedApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "config.api.authentication.SignedApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Authorization: Bearer <api_key>. Two kinds of key authenticate "
            "and sign alike: marketplace keys (`manage.py create_api_key MARKETPLACE_CODE`) "
            "for the marketplace operations, and merchant keys (`manage.py create_api_key "
            "--merchant PUBLIC_ID`), each acting for its one merchant, for merchant "
            "operations. A key of the other kind gets 403 with code `credential_scope`. "
            "POSTs are also signed: see the Chainfin-Timestamp, Chainfin-Signature and "
            "Idempotency-Key headers of each operation.",
        }


def require_request_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: every operation that takes a body requires one (an empty POST is
    refused), which drf-spectacular cannot infer for raw XML and free-form JSON bodies."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return result
