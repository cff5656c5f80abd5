"""Invoice identity: one invoice, however spelled and whoever sends it, hashes to one value.

Invoice numbers are unique per supplier, so an invoice is (its supplier, its normalised number):
a bank must never finance it twice, even when it arrives through a second marketplace, with a
cosmetic variant of its number ("INV-001", "inv 001", "ＩＮＶ－００１", "ІNV-001" with a
Cyrillic І), or with another amount, issue date or currency (then one of the two is wrong, and
an officer looks). The supplier is the merchant whose chain the invoice joins, by its identity
(:func:`supplier_identity`), never by the sender's spelling of it. The fingerprint is a SHA-256
over both; a unique index on live assignments per fingerprint does the refusing, and the later
arrivals of a fingerprint are ``DUPLICATE_INVOICE`` (financing.eligibility).

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
changes (financing migrations 0002 and 0003 did), and bump :data:`FINGERPRINT_SCHEME` when it
changes them all.
"""

# ruff: noqa: RUF002 -- look-alike characters are this module's subject.
from __future__ import annotations

import hashlib
import re
import unicodedata

from ledger.canonical import canonical_json
from merchants.identifiers import identifier_fold

FINGERPRINT_SCHEME = "chainfin.invoice-identity.v2"

# Besides whitespace, Unicode dashes (category Pd), controls and invisible format characters
# (zero-width space, soft hyphen, bidi marks: category Cc/Cf).
_SEPARATORS = frozenset("\u2212/._#:\\\u2215\u2044\u29f8\u00b7\u2027\u2219\u30fb")
_DIGIT_RUN = re.compile(r"[0-9]+")
# A run of separators between two digits keeps one marker, so "1-1" stays apart from "11".
_BETWEEN_DIGITS = re.compile(r"(?<=[0-9]) +(?=[0-9])")


def _is_separator(ch: str) -> bool:
    return ch in _SEPARATORS or ch.isspace() or unicodedata.category(ch) in ("Pd", "Cc", "Cf")


# The same test for ASCII, as one translation: most invoice numbers are ASCII only.
_ASCII_SPACED = str.maketrans({ch: " " for ch in map(chr, range(128)) if _is_separator(ch)})


def _spaced(folded: str) -> str:
    """``folded`` with each separator a space."""
    if folded.isascii():
        return folded.translate(_ASCII_SPACED)
    return "".join(" " if _is_separator(ch) else ch for ch in folded)


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
    spaced = _spaced(identifier_fold(number))
    unpadded = _DIGIT_RUN.sub(lambda match: match[0].lstrip("0") or "0", spaced)
    joined = _BETWEEN_DIGITS.sub("-", unpadded).replace(" ", "")
    # Dropping a separator can bring a letter and a following combining mark together.
    return unicodedata.normalize("NFKC", joined)


def supplier_identity(*, tax_id_normalised: str, public_id: str) -> str:
    """Return who issued a merchant's invoices: its normalised tax id, else its Chainfin id.

    The tax id (``Merchant.tax_id_normalised``) makes one supplier of two merchant rows that
    two marketplaces onboarded apart; a merchant without one is itself alone. A normalised tax
    id is letters and digits only, so it never reads like "merchant:<public id>".

    :raises ValueError: both are empty.
    """
    if not (tax_id_normalised or public_id):
        raise ValueError("A supplier needs a tax id or a public id.")
    return tax_id_normalised or f"merchant:{public_id}"


def invoice_fingerprint(*, supplier: str, invoice_number: str) -> str:
    """Return the hex SHA-256 identifying one invoice across marketplaces and spellings.

    ``supplier`` is :func:`supplier_identity` of the merchant whose chain the invoice joins.
    The hash covers the RFC 8785 canonical JSON of the scheme name and the parts, so no two
    different pairs share an encoding. A number that normalises to "" is still fingerprinted:
    it can only collide with another such number of the same supplier, and refusing that as a
    duplicate is the safe side for a bank.

    :raises ValueError: non-string parts, or an empty supplier.
    """
    if not isinstance(supplier, str) or not supplier:
        raise ValueError("A supplier must be a non-empty string.")
    body = canonical_json(
        {
            "scheme": FINGERPRINT_SCHEME,
            "supplier": supplier,
            "invoice_number": invoice_number_normalise(invoice_number),
        }
    )
    return hashlib.sha256(body).hexdigest()
