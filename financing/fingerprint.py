"""Invoice fingerprints: the same invoice, however it is spelled, hashes to one value.

A bank must never finance one invoice twice, even when it arrives through a second marketplace
or with a cosmetic variant of its number ("INV-001", "inv 001", "ＩＮＶ－００１", "ІNV-001" with
a Cyrillic І). The fingerprint is a SHA-256 over the normalised supplier tax id (the one tax-id
normaliser, merchants.identifiers) and invoice number plus currency, amount and issue date; a
unique index on live assignments per fingerprint does the refusing.

What is deliberately *not* merged in invoice numbers:

- Digit 0 and letter O, digit 1 and letters l/I. Real numbering schemes use both ("SO-1001",
  "L10"), and merging them would make distinct invoices collide and be refused as duplicates.
  So a Cyrillic or Greek О becomes Latin "o", never "0": "INV-ОО1" equals "INV-OO1", not
  "INV-001".
- A separator between two digits: "INV-1-1" and "INV-11" are different invoices. Separators are
  dropped everywhere else, and between digits collapse to one "-".
- Accents and other marks: "é" stays "é".

Stability: stored fingerprints are compared with new ones, so a change to the normalisation
(here or in merchants.identifiers) or to the encoding below must recompute the stored ones it
changes (as financing migration 0002 did when bare national tax ids got their country), and
bump :data:`FINGERPRINT_SCHEME` when it changes them all.
"""

# ruff: noqa: RUF002 -- look-alike characters are this module's subject.
from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date, datetime

from ledger.canonical import canonical_json
from ledger.money import MAX_MINOR_UNITS, currency_exponent
from merchants.identifiers import identifier_fold, tax_id_normalise

FINGERPRINT_SCHEME = "chainfin.invoice-fingerprint.v1"

# Besides whitespace, Unicode dashes (category Pd), controls and invisible format characters
# (zero-width space, soft hyphen, bidi marks: category Cc/Cf).
_SEPARATORS = frozenset("\u2212/._#:\\\u2215\u2044\u29f8\u00b7\u2027\u2219\u30fb")
_DIGIT_RUN = re.compile(r"[0-9]+")
# A run of separators between two digits keeps one marker, so "1-1" stays apart from "11".
_BETWEEN_DIGITS = re.compile(r"(?<=[0-9]) +(?=[0-9])")


def _is_separator(ch: str) -> bool:
    return ch in _SEPARATORS or ch.isspace() or unicodedata.category(ch) in ("Pd", "Cc", "Cf")


def invoice_number_normalise(number: str) -> str:
    """Return the skeleton of an invoice number: one spelling per invoice.

    NFKC (full-width forms, ligatures); case folding; Greek and Cyrillic look-alikes to Latin;
    decimal digits of every script to ASCII; separators (whitespace, every dash, minus, '/',
    '.', '_', '#', ':', invisible format characters) dropped, except that a run of them between
    two digits becomes one "-"; leading zeros stripped from every run of digits ("0001" → "1",
    "000" → "0"). Idempotent. "INV-001", "inv 001" and "ＩＮＶ－００１" all give "inv1";
    "INV-1-1" gives "inv1-1" and "INV-11" gives "inv11".

    :raises ValueError: ``number`` is not a string.
    """
    if not isinstance(number, str):
        raise ValueError(f"An invoice number must be a string, not {type(number).__name__}.")
    spaced = "".join(" " if _is_separator(ch) else ch for ch in identifier_fold(number))
    unpadded = _DIGIT_RUN.sub(lambda match: match[0].lstrip("0") or "0", spaced)
    joined = _BETWEEN_DIGITS.sub("-", unpadded).replace(" ", "")
    # Dropping a separator can bring a letter and a following combining mark together.
    return unicodedata.normalize("NFKC", joined)


def invoice_fingerprint(
    *,
    supplier_tax_id: str,
    supplier_country: str = "",
    invoice_number: str,
    currency: str,
    amount_minor: int,
    issue_date: date,
) -> str:
    """Return the hex SHA-256 identifying one invoice across marketplaces and spellings.

    The hash covers the RFC 8785 canonical JSON of the scheme name and the normalised parts, so
    no two different tuples share an encoding. ``supplier_country`` qualifies a bare national
    tax id, as in supplier matching: "300000001" with "DE" is "DE300000001". A tax id or number
    that normalises to "" is still fingerprinted: it can only collide with another such invoice
    of the same supplier, amount, currency and date, and refusing that as a duplicate is the
    safe side for a bank.

    :raises MoneyError: ``currency`` is not an ISO 4217 code (a ValueError).
    :raises ValueError: non-string texts; an amount that is not a positive integer below
        ``MAX_MINOR_UNITS``; an issue date that is a datetime or not a date.
    """
    currency_exponent(currency)
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise ValueError(f"amount_minor must be an integer, not {type(amount_minor).__name__}.")
    if not 0 < amount_minor < MAX_MINOR_UNITS:
        raise ValueError(f"amount_minor must be between 1 and {MAX_MINOR_UNITS - 1}.")
    # A datetime is a date too, but its isoformat() carries the time and would split one invoice.
    if isinstance(issue_date, datetime) or not isinstance(issue_date, date):
        raise ValueError(f"issue_date must be a date, not {type(issue_date).__name__}.")
    body = canonical_json(
        {
            "scheme": FINGERPRINT_SCHEME,
            "supplier_tax_id": tax_id_normalise(supplier_tax_id, country=supplier_country),
            "invoice_number": invoice_number_normalise(invoice_number),
            "currency": currency,
            "amount_minor": amount_minor,
            "issue_date": issue_date.isoformat(),
        }
    )
    return hashlib.sha256(body).hexdigest()
