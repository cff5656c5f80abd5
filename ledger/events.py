"""Event types and their data schemas.

Every event that reaches a chain is validated here first and normalised (amounts to the
currency's exact decimals, timestamps to UTC), so that two spellings of the same fact hash the
same. Refusals carry one message per field, located by a JSON pointer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from ledger.canonical import canonical_json
from ledger.event_fields import (
    Amount,
    AmountOrZero,
    Currency,
    Email,
    IsoDate,
    Name,
    Reason,
    Ref,
    TaxId,
    Timestamp,
    text_type,
)
from ledger.exceptions import EventInvalid, FieldError
from ledger.money import CURRENCY_EXPONENTS, parse_minor_units


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Priced(_Data):
    currency: Currency
    amount: Amount


class Buyer(_Data):
    id: Ref | None = None
    name: Name | None = None


class OrderPlaced(_Priced):
    buyer: Buyer | None = None


class OrderCancelled(_Data):
    reason: Reason | None = None


class InvoiceDebtor(_Data):
    kind: Literal["marketplace", "business"]
    name: Name
    tax_id: TaxId | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    # Where a business buyer's notice of assignment is e-mailed; absent in older events.
    email: Email | None = None


class InvoicePayee(_Data):
    """Someone other than the supplier is to be paid (EN 16931 BG-10): the invoice was assigned.

    Its presence is the fact; name and identifier are recorded when the document states them.
    """

    name: Name | None = None
    id: Ref | None = None


class InvoiceIssued(_Priced):
    # Optional: an invoice without its buyer order is still evidence (Peppol's BT-13 is
    # optional); it is not fundable until an ``invoice.linked`` names the order.
    order_ref: Ref | None = None
    issue_date: IsoDate
    due_date: IsoDate
    debtor: InvoiceDebtor
    supplier_tax_id: TaxId | None = None
    payee: InvoicePayee | None = None

    @model_validator(mode="after")
    def _due_after_issue(self) -> InvoiceIssued:
        if self.due_date < self.issue_date:
            raise _located("due_date", "Must not be before issue_date.")
        if self.due_date > _add_years(self.issue_date, 2):
            raise _located("due_date", "Must be within two years of issue_date.")
        return self


class InvoiceCredited(_Priced):
    invoice_ref: Ref
    issue_date: IsoDate
    reason: Reason | None = None


class InvoiceLinked(_Data):
    """The marketplace names the order an invoice bills, when the invoice did not say."""

    invoice_ref: Ref
    order_ref: Ref


class ShipmentDispatched(_Data):
    order_ref: Ref
    carrier: Name | None = None
    tracking_number: Ref | None = None


class ShipmentDelivered(_Data):
    order_ref: Ref


class ShipmentReturned(_Data):
    order_ref: Ref
    reason: Reason | None = None


class PayoutLine(_Data):
    invoice_ref: Ref
    amount: Amount


class PayoutSettled(_Priced):
    """Money the marketplace paid out; ``lines`` say which invoices it pays, ``amount`` the total.

    Lines may cover less than the total (the rest is unallocated and waits in suspense), never
    more: a payout cannot pay out money it does not carry.
    """

    settled_on: IsoDate
    lines: Annotated[list[PayoutLine], Field(max_length=1000)] = []

    @model_validator(mode="after")
    def _lines_within_amount(self) -> PayoutSettled:
        if self.currency not in CURRENCY_EXPONENTS:
            return self  # the currency reports its own error
        total = parse_minor_units(self.amount, self.currency)
        lines = sum(parse_minor_units(line.amount, self.currency) for line in self.lines)
        if lines > total:
            raise _located(
                "lines", f"The lines sum to more than the payout's amount ({self.amount})."
            )
        return self


class ReceivableAssigned(_Priced):
    """The bank now owns the receivable: its debtor must pay the bank, not the merchant."""

    invoice_ref: Ref
    advance_ref: Ref
    assignee: Name


class AdvanceDisbursed(_Priced):
    """Money left the bank for the merchant: ``amount`` is the advance, the fee deducted from it."""

    advance_ref: Ref
    fee: AmountOrZero
    reserve: AmountOrZero
    due_date: IsoDate
    invoice_refs: Annotated[list[Ref], Field(min_length=1, max_length=100)]


class AdvanceRepaid(_Priced):
    """Every receivable of the advance is closed: ``amount`` is the principal its debtors repaid
    (nothing when dilution took it all; the merchant then owes it as recourse)."""

    amount: AmountOrZero
    advance_ref: Ref
    payout_ref: Ref | None = None


class ReceivableSettled(_Priced):
    """A payout line applied to a receivable: ``amount`` is the line, then how it was split.

    The waterfall: late fees, then principal, then the rest released to the merchant (the
    discount fee was deducted at disbursement, so none is ever unpaid). ``outstanding`` is what
    the debtor still owes after this line.
    """

    invoice_ref: Ref
    payout_ref: Ref
    line: Annotated[int, Field(ge=0, le=100_000, strict=True)]
    advance_ref: Ref | None = None
    to_late_fees: AmountOrZero
    to_principal: AmountOrZero
    to_merchant: AmountOrZero
    to_suspense: AmountOrZero
    outstanding: AmountOrZero


class ReserveReleased(_Priced):
    """Reserve released to the merchant on closing: ``amount`` is the reserve released, of which
    ``recourse_netted`` was kept back against recourse the merchant owes; the rest is paid out."""

    invoice_ref: Ref
    recourse_netted: AmountOrZero


class RecourseRaised(_Priced):
    """The merchant owes the bank ``amount``: dilution after funding, or late fees left unpaid."""

    invoice_ref: Ref
    advance_ref: Ref
    reason: Reason


class SuspenseAllocated(_Priced):
    """Officers allocated money held in suspense, four-eyes: to an invoice or to the merchant."""

    suspense_ref: Ref
    invoice_ref: Ref | None = None
    proposed_by: Name
    confirmed_by: Name


class AdvanceOverdue(_Data):
    """``amount`` is the late fee charged today (possibly zero), ``days_past_due`` since due."""

    currency: Currency
    amount: AmountOrZero
    advance_ref: Ref
    days_past_due: Annotated[int, Field(ge=1, le=100_000, strict=True)]


# What a marketplace may send.
EVENT_SCHEMAS: dict[str, type[_Data]] = {
    "order.placed": OrderPlaced,
    "order.cancelled": OrderCancelled,
    "invoice.issued": InvoiceIssued,
    "invoice.credited": InvoiceCredited,
    "invoice.linked": InvoiceLinked,
    "shipment.dispatched": ShipmentDispatched,
    "shipment.delivered": ShipmentDelivered,
    "shipment.returned": ShipmentReturned,
    "payout.settled": PayoutSettled,
}
# The capital flow: appended by Chainfin itself (``system_event``), never accepted from outside.
SYSTEM_EVENT_SCHEMAS: dict[str, type[_Data]] = {
    "receivable.assigned": ReceivableAssigned,
    "advance.disbursed": AdvanceDisbursed,
    "advance.repaid": AdvanceRepaid,
    "advance.overdue": AdvanceOverdue,
    "receivable.settled": ReceivableSettled,
    "reserve.released": ReserveReleased,
    "recourse.raised": RecourseRaised,
    "suspense.allocated": SuspenseAllocated,
}


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Annotated[str, text_type(64)]
    ref: Ref
    occurred_at: Timestamp
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ValidEvent:
    """An event that passed validation, in canonical form, ready to append.

    ``data_json`` and ``occurred_at_text`` are the canonical spellings every entry body and
    request hash embeds, computed once here instead of once per use.
    """

    type: str
    ref: str
    occurred_at: datetime
    data: dict[str, Any]
    data_json: bytes = field(init=False, repr=False, compare=False)
    occurred_at_text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_json", canonical_json(self.data))
        object.__setattr__(self, "occurred_at_text", format_timestamp(self.occurred_at))


class _LocatedError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _located(field: str, message: str) -> _LocatedError:
    return _LocatedError(field, message)


def _pointer(location: tuple[int | str, ...]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in location)


def _field_errors(exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False):
        location = prefix + tuple(error["loc"])
        message = error["msg"]
        if error["type"] == "missing":
            message = "This field is required."
        elif error["type"] == "extra_forbidden":
            message = "Unknown field."
        elif error["type"] == "model_type":
            message = "Must be an object."
        elif isinstance(error.get("ctx", {}).get("error"), _LocatedError):
            located: _LocatedError = error["ctx"]["error"]
            location, message = (*prefix, *error["loc"], located.field), located.message
        errors.append(FieldError(_pointer(location), message))
    return errors


def event_parse(raw: object, *, schemas: Mapping[str, type[_Data]] = EVENT_SCHEMAS) -> ValidEvent:
    """Validate one event ``{"type", "ref", "occurred_at", "data"}`` and return its canonical form.

    ``schemas`` are the types the sender may use: a marketplace's by default.

    :raises EventInvalid: every problem found, each with a JSON pointer into ``raw``.
    """
    if not isinstance(raw, Mapping):
        raise EventInvalid([FieldError("", "An event must be a JSON object.")])
    try:
        envelope = _Envelope.model_validate(raw)
    except ValidationError as exc:
        errors = _field_errors(exc)
        # Report data problems too when the type is known, so one round trip shows them all.
        type_ = raw.get("type")
        schema = schemas.get(type_) if isinstance(type_, str) else None
        if schema is not None and isinstance(raw.get("data"), Mapping):
            errors += _data_errors(schema, raw["data"])
        raise EventInvalid(errors) from None
    schema = schemas.get(envelope.type)
    if schema is None:
        known = ", ".join(sorted(schemas))
        raise EventInvalid([FieldError("/type", f"Unknown event type; expected one of {known}.")])
    try:
        data = _data_validate(schema, envelope.data)
    except ValidationError as exc:
        raise EventInvalid(_field_errors(exc, ("data",))) from None
    return ValidEvent(
        type=envelope.type,
        ref=envelope.ref,
        occurred_at=envelope.occurred_at,
        data=data.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
    )


def system_event(type_: str, ref: str, occurred_at: datetime, data: dict[str, Any]) -> ValidEvent:
    """A capital-flow event Chainfin appends itself, validated like any other.

    :raises EventInvalid: a bug in the caller; system events are built from checked state.
    """
    raw = {"type": type_, "ref": ref, "occurred_at": format_timestamp(occurred_at), "data": data}
    return event_parse(raw, schemas=SYSTEM_EVENT_SCHEMAS)


def _data_validate(schema: type[_Data], data: Mapping[str, Any]) -> _Data:
    return schema.model_validate(data, context={"currency": data.get("currency")})


def _data_errors(schema: type[_Data], data: Mapping[str, Any]) -> list[FieldError]:
    try:
        _data_validate(schema, data)
    except ValidationError as exc:
        return _field_errors(exc, ("data",))
    return []


def format_timestamp(moment: datetime) -> str:
    """The one spelling of a point in time inside a chain entry: UTC, microseconds, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
