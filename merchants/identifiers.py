"""Spellings of identifiers: the one tax-id normaliser, and the folding invoice numbers share.

A tax id reaches Chainfin typed by a merchant at onboarding, named in an invoice event, or read
from a UBL document's supplier party, and the same party spells it many ways: "DE 300 000 001",
"de-300.000.001", "ＤＥ３００…" in full width, "DЕ300000001" with a Cyrillic Е, or the bare
national "300000001" of a German merchant. Supplier matching (ledger.selectors), the UBL parser
(ledger.formats.ubl) and the invoice fingerprint (financing.fingerprint) all compare them through
:func:`tax_id_normalise`; ``Merchant.tax_id_normalised`` stores its result for the database.

The look-alike table is explicit and small (Greek and Cyrillic letters that pass for Latin ones,
dotless i), not Unicode's full TR39 skeleton, which merges 0/O and 1/l/I: real numbering schemes
use both, and merging them would make distinct invoices collide. So a Cyrillic or Greek О
becomes Latin "o", never "0". Accents and other marks stay: "é" is not "e".

Stability: stored fingerprints and ``Merchant.tax_id_normalised`` are compared with new
results, so a change to the folding or to :func:`tax_id_normalise` must recompute them (see
financing.fingerprint). NFKC and case folding are stable for assigned characters across Unicode
versions; characters assigned later may normalise differently once Python knows them.
"""

# ruff: noqa: RUF001, RUF002, RUF003 -- look-alike characters are this module's subject.
from __future__ import annotations

import re
import unicodedata

# Keys are lower case: the table is applied after case folding, so both cases of a letter map
# to the same Latin letter. Where only one case looks Latin (Greek Ν/ν look like N/v, Η/η like
# H/n), the pair follows the capital: lower-case ν is not caught, but "ΝΗ-1" and "νη-1" stay
# equal, which a case-insensitive fingerprint owes to genuinely Greek invoice numbers.
_LOOK_ALIKES = {
    # Cyrillic
    "а": "a", "в": "b", "ԁ": "d", "е": "e", "һ": "h", "н": "h", "і": "i", "ӏ": "i", "ј": "j",
    "к": "k", "м": "m", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "ԝ": "w", "х": "x",
    "у": "y", "ү": "y", "с": "c",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "h", "ι": "i", "ϳ": "j", "κ": "k", "μ": "m",
    "ν": "n", "ο": "o", "ρ": "p", "τ": "t", "χ": "x", "υ": "y", "ζ": "z",
    # (Lunate sigma ϲ would belong here, but NFKC makes it σ before the table sees it.)
    # Latin letters NFKC keeps apart: dotless i and j, and the Turkish dotted İ, which case
    # folds to "i" plus a combining dot.
    "ı": "i", "ȷ": "j", "i̇": "i",
}  # fmt: skip
_LOOK_ALIKE_RE = re.compile("|".join(map(re.escape, sorted(_LOOK_ALIKES, key=len, reverse=True))))

# The EU VAT prefix is the ISO 3166-1 code but for Greece, whose VAT numbers start with "EL".
_VAT_PREFIXES = {"GR": "EL"}


def identifier_fold(text: str) -> str:
    """Case fold, map look-alikes to Latin, NFKC, and decimal digits of any script to ASCII."""
    if text.isascii():  # nearly every identifier: each step but case folding leaves ASCII alone
        return text.lower()
    return _unicode_fold(text)


def _unicode_fold(text: str) -> str:
    # Decomposed first, so an accented look-alike maps by its base letter (Cyrillic ё → ë) and
    # the result recomposes like the Latin spelling would.
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    text = _LOOK_ALIKE_RE.sub(lambda match: _LOOK_ALIKES[match[0]], text)
    text = unicodedata.normalize("NFKC", text)
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def tax_id_normalise(tax_id: str, *, country: str = "") -> str:
    """Return a tax id as upper-case letters and digits only: "de 123.456-789" → "DE123456789".

    NFKC, look-alike letters to Latin and digits of every script to ASCII as for invoice
    numbers (:func:`identifier_fold`), then everything that is not a letter or digit is
    dropped. A tax id that then starts with a digit is a bare national number: given the
    party's ``country`` (ISO 3166-1 alpha-2) it gets that country's VAT prefix, so
    "300000001" of a German merchant is "DE300000001"; without a country it stays bare.
    Leading zeros are kept: tax ids have fixed lengths. An empty or separator-only tax id gives
    "". Idempotent.

    :raises ValueError: ``tax_id`` is not a string.
    """
    if not isinstance(tax_id, str):
        raise ValueError(f"A tax id must be a string, not {type(tax_id).__name__}.")
    normalised = _alnum_only(identifier_fold(tax_id).upper())
    if country and normalised[:1].isdecimal():
        country = country.upper()
        return _VAT_PREFIXES.get(country, country) + normalised
    return normalised


def tax_id_is_own(tax_id: str, *, own_normalised: str, country: str) -> bool:
    """Whether ``tax_id``, however spelled, is the party's own tax id.

    ``own_normalised`` and ``country`` are the party's (``Merchant.tax_id_normalised`` and
    ``Merchant.country``); a bare national ``tax_id`` is qualified with that country, so
    "300000001" is a German merchant's "DE300000001". A party without a tax id owns none.

    :raises ValueError: ``tax_id`` is not a string.
    """
    return bool(own_normalised) and tax_id_normalise(tax_id, country=country) == own_normalised


def tax_id_is_national(tax_id: str) -> bool:
    """Whether ``tax_id`` is a bare national number, which only its party's country qualifies.

    :raises ValueError: ``tax_id`` is not a string.
    """
    return tax_id_normalise(tax_id)[:1].isdecimal()


def party_name_normalise(name: str) -> str:
    """Return a party's name as folded letters and digits only: "ACME  G.m.b.H." → "acmegmbh".

    For a business buyer that has no tax id, its name (with its country) is what identifies it
    for concentration limits, so the spellings one buyer arrives in must meet: case, full-width
    forms, look-alike letters, punctuation and spacing are folded away (:func:`identifier_fold`).
    Merging two real names that differ only in spacing errs toward a tighter limit. Idempotent.

    :raises ValueError: ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise ValueError(f"A name must be a string, not {type(name).__name__}.")
    return _alnum_only(identifier_fold(name))


_ASCII_NOT_ALNUM = re.compile("[^0-9A-Za-z]")


def _alnum_only(text: str) -> str:
    """The letters and digits of ``text`` (``str.isalnum``), in one pass of C for ASCII."""
    if text.isascii():
        return _ASCII_NOT_ALNUM.sub("", text)
    return "".join(ch for ch in text if ch.isalnum())
