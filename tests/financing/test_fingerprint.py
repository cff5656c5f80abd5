"""Invoice fingerprints: one per (supplier, invoice number) however it is spelled, others apart."""

from __future__ import annotations

import hashlib
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from financing.fingerprint import (
    FINGERPRINT_SCHEME,
    _is_separator,
    _spaced,
    invoice_fingerprint,
    invoice_number_normalise,
    supplier_identity,
)
from merchants.identifiers import _LOOK_ALIKES, tax_id_normalise

INVOICE = {"supplier": "DE123456789", "invoice_number": "INV-001"}


def fingerprint(**overrides: object) -> str:
    return invoice_fingerprint(**(INVOICE | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "number",
    [
        "INV-001",
        "inv 001",
        "INV\u2010001",  # hyphen
        "INV\u2013001",  # en dash
        "INV\u2014001",  # em dash
        "INV\u2212001",  # minus sign
        "INV\u00ad001",  # soft hyphen
        "INV\u200b001",  # zero-width space
        "INV\u00a0001",  # no-break space
        "INV-0001",
        "INV001",
        "INV-1",
        "ＩＮＶ－００１",  # full width
        "ІNV-001",  # Cyrillic capital I
        "іnv/001",  # Cyrillic small i
        "ΙΝV-001",  # Greek capital iota and nu
        "INV_001",
        "INV#001",
        "INV:001",
        "INV.001",
        "#INV / 001.",
        "INV-١",  # Arabic-Indic digit one
        "INV-०٠१",  # Devanagari and Arabic-Indic digits
    ],
)
def test_spellings_of_one_invoice_share_a_fingerprint(number: str) -> None:
    assert invoice_number_normalise(number) == "inv1"
    assert fingerprint(invoice_number=number) == fingerprint()


@pytest.mark.parametrize(
    ("number", "skeleton"),
    [
        ("INV-1-1", "inv1-1"),
        ("INV-11", "inv11"),
        ("INV 1 -- 1", "inv1-1"),
        ("2026/000/0042", "2026-0-42"),
        ("000", "0"),
        ("A-0-B", "a0b"),
        ("A00B", "a0b"),
        ("SO-1001", "so1001"),
        ("L10", "l10"),
        ("INV-ОО1", "invoo1"),  # a Cyrillic capital O is the letter o, never the digit 0
        ("Ёж-1", "ëж1"),  # Cyrillic IO maps by its base letter, recomposes as Latin e-diaeresis
        ("ΝΗ-7", "nh7"),
        ("νη-7", "nh7"),
        ("İNV-1", "inv1"),  # Turkish dotted capital I
        ("---", ""),
        ("", ""),
    ],
)
def test_normalised_skeletons(number: str, skeleton: str) -> None:
    assert invoice_number_normalise(number) == skeleton


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("INV-001", "INV-010"),
        ("INV-001", "INV-002"),
        ("INV-001", "INV-100"),
        # A separator between digits is kept as one marker: these are two invoices.
        ("INV-1-1", "INV-11"),
        ("2026-001", "2026001"),
        # 0/O and 1/l/I are not merged: real numbering schemes use both.
        ("INV-001", "INV-OO1"),
        ("INV-001", "INV-ОО1"),  # Cyrillic capital O
        ("INV-101", "INV-l01"),
        ("INV-101", "INV-I01"),
        ("INV-1", "INV-1A"),
        ("INV-é1", "INV-e1"),
    ],
)
def test_different_invoice_numbers_keep_different_fingerprints(one: str, other: str) -> None:
    assert fingerprint(invoice_number=one) != fingerprint(invoice_number=other)


def test_another_supplier_changes_the_fingerprint() -> None:
    assert fingerprint(supplier="DE123456780") != fingerprint()


def test_the_encoding_is_pinned() -> None:
    # Stored fingerprints are compared with new ones: a change here must bump the scheme.
    body = (
        b'{"invoice_number":"inv1","scheme":"chainfin.invoice-identity.v2",'
        b'"supplier":"DE123456789"}'
    )
    assert FINGERPRINT_SCHEME == "chainfin.invoice-identity.v2"
    assert fingerprint() == hashlib.sha256(body).hexdigest()


def test_parts_cannot_bleed_into_each_other() -> None:
    # With plain concatenation "DE1" + "23-1" and "DE12" + "3-1" would hash alike.
    assert fingerprint(supplier="DE1", invoice_number="23-1") != fingerprint(
        supplier="DE12", invoice_number="3-1"
    )


def test_a_supplier_is_its_tax_id_else_its_chainfin_id() -> None:
    assert supplier_identity(tax_id_normalised="DE123456789", public_id="mer_1") == "DE123456789"
    assert supplier_identity(tax_id_normalised="", public_id="mer_1") == "merchant:mer_1"
    with pytest.raises(ValueError, match="needs a tax id or a public id"):
        supplier_identity(tax_id_normalised="", public_id="")


def test_a_number_of_separators_only_is_still_fingerprinted() -> None:
    # Ledger validation accepts "#" as a reference; refusing it would break the projector.
    # Such numbers collide only within one supplier: the safe side.
    assert fingerprint(invoice_number="#") == fingerprint(invoice_number="--")
    assert fingerprint(invoice_number="#") != fingerprint()


@pytest.mark.parametrize(
    ("tax_id", "normalised"),
    [
        ("DE123456789", "DE123456789"),
        ("de 123 456 789", "DE123456789"),
        ("DE-123.456/789", "DE123456789"),
        ("ＤＥ１２３４５６７８９", "DE123456789"),  # full width
        ("DЕ123456789", "DE123456789"),  # Cyrillic capital IE
        ("GB\u200b999 9999 73", "GB999999973"),
        ("0012345", "0012345"),  # leading zeros matter in a tax id
        ("", ""),
        (" - ", ""),
    ],
)
def test_tax_id_normalise(tax_id: str, normalised: str) -> None:
    assert tax_id_normalise(tax_id) == normalised


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"invoice_number": 1}, "An invoice number must be a string, not int."),
        ({"supplier": None}, "A supplier must be a non-empty string."),
        ({"supplier": ""}, "A supplier must be a non-empty string."),
    ],
)
def test_nonsense_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        fingerprint(**change)


def test_look_alike_table_maps_both_cases_to_one_ascii_letter() -> None:
    for source, latin in _LOOK_ALIKES.items():
        assert latin.isascii() and latin.isalpha() and latin.islower()
        assert invoice_number_normalise(source) == latin
        assert invoice_number_normalise(source.upper()) == latin, source


# --- properties -----------------------------------------------------------------------------

SEPARATORS = "-/._#: \u2010\u2013\u2014\u2212\u00ad\u200b\u3000"
LOOK_ALIKE_LETTERS = "".join(_LOOK_ALIKES).replace("i\u0307", "") + "ΝΗΒΕΖΜΥΧАВЕКМНОРСТХ"
OTHER_LETTERS = "δΔжЖéÉäÄ"
LETTERS = string.ascii_letters + LOOK_ALIKE_LETTERS + OTHER_LETTERS + "ＡＢＣａｂｃ"
DIGITS = string.digits + "０１２٠١٢"
numbers = st.text(alphabet=LETTERS + DIGITS + SEPARATORS, max_size=30)


@given(st.text())
def test_normalise_is_idempotent(text: str) -> None:
    once = invoice_number_normalise(text)
    assert invoice_number_normalise(once) == once
    tax = tax_id_normalise(text)
    assert tax_id_normalise(tax) == tax


@given(numbers, st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(SEPARATORS))))
def test_inserting_separators_never_changes_the_fingerprint(
    number: str, insertions: list[tuple[int, str]]
) -> None:
    spelled = number
    for position, separator in insertions:
        at = position % (len(spelled) + 1)
        if spelled[at - 1 : at].isdecimal() and spelled[at : at + 1].isdecimal():
            continue  # between two digits a separator is significant: "1-1" is not "11"
        spelled = spelled[:at] + separator + spelled[at:]
    assert invoice_number_normalise(spelled) == invoice_number_normalise(number)
    assert fingerprint(invoice_number=spelled) == fingerprint(invoice_number=number)


@given(numbers, st.sampled_from([str.upper, str.lower, str.swapcase, str.title]))
def test_changing_case_never_changes_the_fingerprint(number: str, recase: object) -> None:
    recased = recase(number)  # type: ignore[operator]
    assert invoice_number_normalise(recased) == invoice_number_normalise(number)
    assert fingerprint(invoice_number=recased) == fingerprint(invoice_number=number)


@given(st.text(alphabet=string.ascii_letters + string.digits + " -./", max_size=20))
def test_tax_id_ignores_case_and_separators(tax_id: str) -> None:
    canonical = "".join(ch for ch in tax_id.upper() if ch.isalnum())
    assert tax_id_normalise(tax_id) == canonical
    assert tax_id_normalise(tax_id.swapcase()) == canonical


@given(st.text())
def test_ascii_separators_are_the_ones_the_unicode_test_finds(text: str) -> None:
    # ASCII numbers are spaced by one translation table, the rest character by character.
    for spelling in (text, text.encode("ascii", "ignore").decode()):
        assert _spaced(spelling) == "".join(" " if _is_separator(ch) else ch for ch in spelling)
