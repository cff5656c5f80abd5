"""The demo's six months of trade evidence: marketplaces, merchants and their histories.

Generated from a fixed seed by ``seed_demo``, so every demo shows the same evidence.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from itertools import count
from typing import TYPE_CHECKING, Any

from ledger.money import format_minor_units
from merchants.models import Merchant

if TYPE_CHECKING:
    pass


CURRENCY = "EUR"
HISTORY = timedelta(days=182)
PAYOUT_EVERY = timedelta(days=14)
# The last weeks' marketplace orders, delivered and invoiced, not yet due: receivables the
# financing demo finances and then settles (repaid, part paid, diluted), whatever the dice said.
RECENT_ORDERS = 6
RECENT_TERMS = timedelta(days=45)


@dataclass(frozen=True, slots=True)
class _MarketplaceSpec:
    code: str
    name: str
    country: str
    tax_id: str
    prefix: str  # of the marketplace's own order, shipment and payout numbers


@dataclass(frozen=True, slots=True)
class _Product:
    unit_cents: int
    max_quantity: int


@dataclass(frozen=True, slots=True)
class MerchantSpec:
    username: str
    legal_name: str
    country: str
    tax_id: str
    kyc_status: str
    marketplace: str
    seller_id: str
    # Invoice and credit note numbers are the supplier's own; distinct prefixes keep them apart
    # within one source, where the default idempotency key "<type>:<ref>" must be unique.
    invoice_prefix: str
    credit_prefix: str
    carriers: tuple[str, ...]
    products: tuple[_Product, ...]


@dataclass(frozen=True, slots=True)
class _Buyer:
    name: str
    country: str
    tax_id: str
    email: str = ""  # where notices of assignment go; one buyer has none, and its notice waits


MARKETPLACES = (
    _MarketplaceSpec("acme", "Acme Marketplace", "DE", "DE298765431", "ACM"),
    _MarketplaceSpec("nordmarkt", "Nordmarkt B.V.", "NL", "NL861234567B01", "NM"),
)

MERCHANTS = (
    MerchantSpec(
        username="merchant1",
        legal_name="Schwarzwald Präzisionswerkzeuge GmbH",
        country="DE",
        tax_id="DE814736925",
        kyc_status=Merchant.KycStatus.VERIFIED,
        marketplace="acme",
        seller_id="A3F9K2QZ7",
        invoice_prefix="RE",
        credit_prefix="GS",
        carriers=("DHL Paket", "DPD", "GLS"),
        products=(_Product(18990, 12), _Product(24900, 8), _Product(6450, 40), _Product(3995, 30)),
    ),
    MerchantSpec(
        username="merchant2",
        legal_name="Van Dijk Verpakkingen B.V.",
        country="NL",
        tax_id="NL853746291B01",
        kyc_status=Merchant.KycStatus.VERIFIED,
        marketplace="nordmarkt",
        seller_id="NM-004417",
        invoice_prefix="INV",
        credit_prefix="CN",
        carriers=("PostNL", "DHL Parcel", "DPD"),
        products=(_Product(41280, 10), _Product(8640, 30), _Product(5825, 40), _Product(12900, 15)),
    ),
    MerchantSpec(
        username="merchant3",
        legal_name="Atelier Lumière Lyon SAS",
        country="FR",
        tax_id="FR62852741963",
        kyc_status=Merchant.KycStatus.PENDING,
        marketplace="acme",
        seller_id="A7M2R8XD4",
        invoice_prefix="FA",
        credit_prefix="AV",
        carriers=("Colissimo", "Chronopost", "DB Schenker"),
        products=(_Product(14500, 12), _Product(6890, 40), _Product(9250, 20), _Product(31900, 6)),
    ),
)

BUYERS = (
    _Buyer("Hofmann Industriebedarf GmbH", "DE", "DE267913458", "ap@hofmann.example"),
    _Buyer("Keller & Söhne Metallbau KG", "DE", "DE131875204", "ap@keller.example"),
    _Buyer("Bakker Installatietechniek B.V.", "NL", "NL004495312B01", "ap@bakker.example"),
    _Buyer("De Groot Horeca Groothandel B.V.", "NL", "NL822931074B01", "ap@degroot.example"),
    _Buyer("Rhône Équipements SARL", "FR", "FR17489305216", "ap@rhone.example"),
    _Buyer("Maison Garnier Décoration SAS", "FR", "FR83530917462", "ap@garnier.example"),
    _Buyer("Wiener Bürowelt GmbH", "AT", "ATU63521479", "ap@buerowelt.example"),
    _Buyer("Brussels Office Supplies SRL", "BE", "BE0784512369"),
)

CANCEL_REASONS = (
    "Cancelled by the buyer before dispatch.",
    "Out of stock at the supplier.",
    "Payment not confirmed by the marketplace.",
)
RETURN_REASONS = (
    "Returned by the buyer: not as described.",
    "Returned by the buyer: wrong item delivered.",
    "Returned by the buyer: no longer needed.",
)
REFUSED = "Refused by the consignee; returned to sender."


@dataclass(slots=True)
class _InvoicePlan:
    ref: str
    at: datetime
    due_on: date
    amount_cents: int
    owed_by_marketplace: bool
    credits: list[tuple[datetime, int]] = field(default_factory=list)
    paid: bool = False


@dataclass(slots=True)
class _Timeline:
    """One merchant's events, in the order they will be appended; nothing at or after ``now``."""

    now: datetime
    events: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)

    def add(self, at: datetime, type_: str, ref: str, data: dict[str, Any]) -> bool:
        if at >= self.now:
            return False  # the story goes on after the demo's present; so do later steps
        raw = {"type": type_, "ref": ref, "occurred_at": _timestamp(at), "data": data}
        self.events.append((at, len(self.events), raw))
        return True

    def in_order(self) -> list[dict[str, Any]]:
        # Stable on ties: projectors refuse e.g. a credit note before its invoice.
        return [raw for _, _, raw in sorted(self.events, key=lambda event: event[:2])]


def _timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _minutes(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(minutes=rng.randint(low, high))


def _working_moment(rng: random.Random, start: datetime) -> datetime:
    day = (start + timedelta(days=rng.randrange(HISTORY.days))).date()
    moment = clock(rng.randint(6, 18), rng.randrange(60), rng.randrange(60))
    return datetime.combine(day, moment, tzinfo=UTC)


@dataclass(slots=True)
class DemoHistory:
    """Six months of one merchant's trade on its marketplace, as raw events."""

    spec: MerchantSpec
    market: _MarketplaceSpec
    rng: random.Random
    now: datetime
    order_numbers: Iterator[int]
    timeline: _Timeline = field(init=False)
    invoices: list[_InvoicePlan] = field(default_factory=list)
    invoice_numbers: Iterator[int] = field(default_factory=lambda: count(1))
    credit_numbers: Iterator[int] = field(default_factory=lambda: count(1))

    def __post_init__(self) -> None:
        self.timeline = _Timeline(self.now)

    def events(self) -> list[dict[str, Any]]:
        start = self.now - HISTORY
        placed = sorted(_working_moment(self.rng, start) for _ in range(self.rng.randint(40, 80)))
        for moment in placed:
            self._order(moment)
        self._payouts(start)
        self._recent_orders()
        return self.timeline.in_order()

    def _order(self, placed: datetime) -> None:
        rng, add = self.rng, self.timeline.add
        number = next(self.order_numbers)
        order_ref = f"{self.market.prefix}-{placed:%y%m%d}-{number}"
        product = rng.choice(self.spec.products)
        quantity = rng.randint(1, product.max_quantity)
        buyer_no = rng.randrange(len(BUYERS))
        buyer = BUYERS[buyer_no]
        add(
            placed,
            "order.placed",
            order_ref,
            {
                "currency": CURRENCY,
                "amount": format_minor_units(quantity * product.unit_cents, CURRENCY),
                "buyer": {"id": f"{self.market.prefix}-B{1001 + buyer_no}", "name": buyer.name},
            },
        )
        if rng.random() < 0.07:
            cancelled = placed + _minutes(rng, 20, 2 * 24 * 60)
            add(cancelled, "order.cancelled", order_ref, {"reason": rng.choice(CANCEL_REASONS)})
            return

        shipment_ref = f"{self.market.prefix}-SHP-{number}"
        dispatched = placed + _minutes(rng, 4 * 60, 3 * 24 * 60)
        shipment = {
            "order_ref": order_ref,
            "carrier": rng.choice(self.spec.carriers),
            "tracking_number": str(rng.randrange(10**13, 10**14)),
        }
        add(dispatched, "shipment.dispatched", shipment_ref, shipment)

        # A part delivery is invoiced for what left the warehouse; the rest is backordered.
        invoiced = quantity
        if quantity > 1 and rng.random() < 0.15:
            invoiced = rng.randint(1, quantity - 1)
        invoice = self._invoice(
            dispatched + _minutes(rng, 15, 4 * 60),
            order_ref,
            invoiced * product.unit_cents,
            buyer if rng.random() < 0.2 else None,
        )

        fate = rng.random()
        if fate < 0.03:
            returned = dispatched + _minutes(rng, 3 * 24 * 60, 8 * 24 * 60)
            add(
                returned,
                "shipment.returned",
                shipment_ref,
                {"order_ref": order_ref, "reason": REFUSED},
            )
            self._credit(invoice, returned + _minutes(rng, 4 * 60, 48 * 60), None, REFUSED)
            return
        delivered = dispatched + _minutes(rng, 24 * 60, 5 * 24 * 60)
        add(delivered, "shipment.delivered", shipment_ref, {"order_ref": order_ref})
        if fate < 0.08:
            reason = rng.choice(RETURN_REASONS)
            returned = delivered + _minutes(rng, 3 * 24 * 60, 14 * 24 * 60)
            add(
                returned,
                "shipment.returned",
                shipment_ref,
                {"order_ref": order_ref, "reason": reason},
            )
            self._credit(invoice, returned + _minutes(rng, 4 * 60, 48 * 60), None, reason)
        elif fate < 0.13:
            credited_at = delivered + _minutes(rng, 2 * 24 * 60, 10 * 24 * 60)
            if invoiced > 3:
                units = rng.randint(1, invoiced // 3)
                reason = f"{units} unit(s) damaged in transit."
                self._credit(invoice, credited_at, units * product.unit_cents, reason)
            else:
                percent = rng.choice((5, 10, 15))
                reason = f"Price reduction of {percent}% agreed for a cosmetic defect."
                amount = invoiced * product.unit_cents * percent // 100
                self._credit(invoice, credited_at, amount, reason)

    def _invoice(
        self, at: datetime, order_ref: str, cents: int, buyer: _Buyer | None
    ) -> _InvoicePlan | None:
        issue_on = at.date()
        due_on = issue_on + timedelta(days=self.rng.choice((30, 45, 60)))
        ref = f"{self.spec.invoice_prefix}-{issue_on.year}-{next(self.invoice_numbers):05d}"
        debtor: dict[str, str] = {
            "kind": "marketplace",
            "name": self.market.name,
            "tax_id": self.market.tax_id,
            "country": self.market.country,
        }
        if buyer is not None:  # invoiced on account: the buyer pays the supplier directly
            debtor = {
                "kind": "business",
                "name": buyer.name,
                "tax_id": buyer.tax_id,
                "country": buyer.country,
            }
            if buyer.email:
                debtor["email"] = buyer.email
        data = {
            "order_ref": order_ref,
            "currency": CURRENCY,
            "amount": format_minor_units(cents, CURRENCY),
            "issue_date": issue_on.isoformat(),
            "due_date": due_on.isoformat(),
            "debtor": debtor,
            "supplier_tax_id": self.spec.tax_id,
        }
        if not self.timeline.add(at, "invoice.issued", ref, data):
            return None
        plan = _InvoicePlan(ref, at, due_on, cents, owed_by_marketplace=buyer is None)
        self.invoices.append(plan)
        return plan

    def _credit(
        self, invoice: _InvoicePlan | None, at: datetime, cents: int | None, reason: str
    ) -> None:
        """Credit ``cents`` of ``invoice`` (all of it when None), if both lie in the past."""
        if invoice is None:
            return
        cents = invoice.amount_cents if cents is None else cents
        ref = f"{self.spec.credit_prefix}-{at.year}-{next(self.credit_numbers):04d}"
        data = {
            "invoice_ref": invoice.ref,
            "currency": CURRENCY,
            "amount": format_minor_units(cents, CURRENCY),
            "issue_date": at.date().isoformat(),
            "reason": reason,
        }
        if self.timeline.add(at, "invoice.credited", ref, data):
            invoice.credits.append((at, cents))

    def _recent_orders(self) -> None:
        """Orders of about 1,000.00 each over the last three weeks, owed by the marketplace.

        No dice: the history drawn above stays what it was, and the demo always has these.
        """
        market = self.market
        for i in range(RECENT_ORDERS):
            product = self.spec.products[i % len(self.spec.products)]
            quantity = max(1, 100_000 // product.unit_cents)
            placed = datetime.combine(self.now.date(), clock(10, 15), tzinfo=UTC)
            placed -= timedelta(days=24 - 3 * i)
            number = next(self.order_numbers)
            order_ref = f"{market.prefix}-{placed:%y%m%d}-{number}"
            shipment_ref = f"{market.prefix}-SHP-{number}"
            buyer = BUYERS[i % len(BUYERS)]
            amount = format_minor_units(quantity * product.unit_cents, CURRENCY)
            dispatched = placed + timedelta(hours=20)
            issued = dispatched + timedelta(hours=2)
            invoice_ref = (
                f"{self.spec.invoice_prefix}-{issued.year}-{next(self.invoice_numbers):05d}"
            )
            shipment = {"order_ref": order_ref, "carrier": self.spec.carriers[0]}
            buyer_ref = {"id": f"{market.prefix}-B{1001 + i % len(BUYERS)}", "name": buyer.name}
            add = self.timeline.add
            add(
                placed,
                "order.placed",
                order_ref,
                {"currency": CURRENCY, "amount": amount, "buyer": buyer_ref},
            )
            add(dispatched, "shipment.dispatched", shipment_ref, shipment)
            add(
                issued,
                "invoice.issued",
                invoice_ref,
                {
                    "order_ref": order_ref,
                    "currency": CURRENCY,
                    "amount": amount,
                    "issue_date": issued.date().isoformat(),
                    "due_date": (issued + RECENT_TERMS).date().isoformat(),
                    "debtor": {
                        "kind": "marketplace",
                        "name": market.name,
                        "tax_id": market.tax_id,
                        "country": market.country,
                    },
                    "supplier_tax_id": self.spec.tax_id,
                },
            )
            add(
                dispatched + timedelta(days=2),
                "shipment.delivered",
                shipment_ref,
                {"order_ref": order_ref},
            )

    def _payouts(self, start: datetime) -> None:
        """Fortnightly, on Fridays, the marketplace pays what it owes and is due, net of credits."""
        first = (start + PAYOUT_EVERY).date()
        first += timedelta(days=(4 - first.weekday()) % 7)
        settled_at = datetime.combine(first, clock(9, 30), tzinfo=UTC)
        while settled_at < self.now:
            lines = []
            for invoice in self.invoices:
                due = invoice.at < settled_at and invoice.due_on <= settled_at.date()
                if invoice.paid or not invoice.owed_by_marketplace or not due:
                    continue
                invoice.paid = True
                net = invoice.amount_cents - sum(c for at, c in invoice.credits if at < settled_at)
                if net > 0:
                    lines.append((invoice.ref, net))
            if lines:
                ref = f"{self.market.prefix}-PO-{settled_at:%Y%m%d}-{self.spec.seller_id}"
                data = {
                    "currency": CURRENCY,
                    "amount": format_minor_units(sum(net for _, net in lines), CURRENCY),
                    "settled_on": settled_at.date().isoformat(),
                    "lines": [
                        {"invoice_ref": r, "amount": format_minor_units(net, CURRENCY)}
                        for r, net in lines
                    ],
                }
                self.timeline.add(settled_at, "payout.settled", ref, data)
            settled_at += PAYOUT_EVERY
