"""What a request may carry, checked one way for every endpoint: query parameters, path
segments and JSON bodies.

A refusal is a ``RequestInvalid`` (422) whose errors point at the parameter ("/limit") or the
body field ("/receivables/0"). Text that names something (an invoice ref, a cursor) follows the
ledger's own rules for refs (``ledger.event_fields.Ref``): a NUL or another control character can
never name anything stored, so it is refused here instead of reaching the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import pydantic
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.settings import api_settings

from config.api.problems import RequestInvalid
from ledger.event_fields import REF_MAX_LENGTH, TEXT_PATTERN, Ref
from ledger.exceptions import FieldError

MAX_PAGE = 1000
DEFAULT_PAGE = 100
# Sequence numbers and cursors are bigints; a larger number names nothing.
MAX_CURSOR = 2**62

_REF = pydantic.TypeAdapter(Ref)
REF_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": REF_MAX_LENGTH,
    "pattern": TEXT_PATTERN,
}


def ref_refusal(value: object) -> str | None:
    """Why ``value`` cannot be a ref (an invoice, order or shipment id), or None if it can."""
    try:
        _REF.validate_python(value)
    except pydantic.ValidationError as exc:
        return str(exc.errors(include_url=False)[0]["msg"])
    return None


def int_query_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter ``name``, ``default`` when absent.

    :raises RequestInvalid: not an integer from ``low`` to ``high``.
    """
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise RequestInvalid(
            [FieldError(f"/{name}", f"Must be an integer from {low} to {high:,}.")]
        )
    return int(raw)


def page_limit(request: Request) -> int:
    """The page size a list endpoint was asked for (``limit``, 1 to 1,000, 100 by default).

    :raises RequestInvalid: out of range.
    """
    return int_query_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)


def ref_query_param(request: Request, name: str) -> str:
    """The query parameter ``name`` as a ref (a cursor naming an invoice), "" when absent.

    :raises RequestInvalid: it could not be a ref.
    """
    raw = request.query_params.get(name, "")
    refusal = ref_refusal(raw) if raw else None
    if refusal is not None:
        raise RequestInvalid([FieldError(f"/{name}", refusal)])
    return raw


@extend_schema_field(REF_SCHEMA)
class RefField(serializers.Field):  # type: ignore[type-arg]
    """A ref in a request body, validated by the very rules the ledger applies to events."""

    def to_internal_value(self, data: Any) -> str:
        refusal = ref_refusal(data)
        if refusal is not None:
            raise serializers.ValidationError(refusal)
        return str(data)

    def to_representation(self, value: Any) -> str:
        return str(value)


class RefListField(serializers.ListField):
    """1 to ``max_length`` distinct refs; a repeat points at the second mention."""

    def __init__(self, *, max_length: int, noun: str, **kwargs: Any) -> None:
        message = f"Must be a list of 1 to {max_length:,} {noun}."
        messages: dict[str, Any] = dict.fromkeys(
            ("not_a_list", "empty", "min_length", "max_length"), message
        )
        super().__init__(
            child=RefField(),
            allow_empty=False,
            min_length=1,
            max_length=max_length,
            error_messages=messages,
            **kwargs,
        )

    def to_internal_value(self, data: Any) -> list[str]:
        refs: list[str] = super().to_internal_value(data)
        seen: set[str] = set()
        twice: dict[str, Any] = {}
        for index, ref in enumerate(refs):
            if ref in seen:
                twice[str(index)] = ["Named twice."]
            seen.add(ref)
        if twice:
            raise serializers.ValidationError(twice)
        return refs


class BodySerializer(serializers.Serializer[Any]):
    """A JSON body: an object with the declared fields and no others.

    The same class documents the body in the schema and validates it; a refusal points at each
    field ("/receivables/1"), and at the body itself ("") when its shape is wrong.
    """

    shape: ClassVar[str]  # the body as a sender would write it, for the refusal at ""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [self._shape()]})
        unknown = sorted(set(data) - set(self.fields))
        missing = [
            name for name, field in self.fields.items() if field.required and name not in data
        ]
        errors: dict[str, Any] = {}
        if unknown or missing:
            named = f"Unknown field {', '.join(map(repr, unknown))}; " if unknown else ""
            errors[api_settings.NON_FIELD_ERRORS_KEY] = [named + self._shape()]
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = exc.detail
            errors |= (
                detail if isinstance(detail, dict) else {api_settings.NON_FIELD_ERRORS_KEY: detail}
            )
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def _shape(self) -> str:
        return f"The body must be {self.shape}."


_B = TypeVar("_B", bound=BodySerializer)


def body_parse(serializer_class: type[_B], data: Any) -> dict[str, Any]:
    """The validated body, as ``serializer_class`` describes it.

    :raises rest_framework.exceptions.ValidationError: answered 422 with a pointer per field.
    """
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    validated: dict[str, Any] = serializer.validated_data
    return validated
