"""The safe-XML reading layer of the UBL reader: untrusted bytes in, a navigable tree out.

Parsing is defensive first: a size cap before any parsing, UTF-8 only, and defusedxml with
every DTD, entity declaration and external reference refused (no network, ever). Navigation
refuses duplicates of an element that must be unique rather than resolving them, because two
parsers picking different copies is how a document says one thing to a validator and another
to us. Every refusal is a ``UblRejected`` with a ``code`` and a readable path into the document.

Named ``ubl_xml`` rather than ``xml`` so that no reader (or tool with this folder on its path)
mistakes it for the standard library's ``xml`` package it builds on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple
from xml.etree.ElementTree import Element, ParseError

from defusedxml import (
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from defusedxml import ElementTree as safe_et

from ledger.event_fields import FORBIDDEN_CHARS
from ledger.exceptions import FieldError, LedgerError

_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_NS = {"cac": _CAC, "cbc": _CBC}

_XML_ENCODING = re.compile(rb"""\bencoding\s*=\s*["']([^"']*)["']""")


class UblRejected(LedgerError):
    """A UBL document Chainfin will not turn into an event; ``code`` says why, ``pointer`` where."""

    code = "ubl_rejected"

    def __init__(self, code: str, message: str, pointer: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pointer = pointer
        self.errors = [FieldError(pointer, message)]


def xml_parse(document: bytes, *, max_bytes: int) -> Element:
    """Parse untrusted bytes into an element tree, refusing anything unsafe or not UTF-8.

    :raises UblRejected: too large, not UTF-8, a DTD, entity or external reference, or malformed.
    """
    if len(document) > max_bytes:
        raise UblRejected(
            "xml_too_large",
            f"The document is {len(document)} bytes; the limit is {max_bytes}.",
            "/",
        )
    _require_utf8(document)
    try:
        root = safe_et.fromstring(
            document, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DTDForbidden:
        raise UblRejected(
            "xml_dtd_forbidden",
            "The document has a DOCTYPE; UBL documents must not declare a DTD (internal or"
            " external), because DTDs carry entity expansion and external fetches.",
            "/",
        ) from None
    except EntitiesForbidden:
        raise UblRejected(
            "xml_entities_forbidden", "The document declares XML entities; none are allowed.", "/"
        ) from None
    except ExternalReferenceForbidden:
        raise UblRejected(
            "xml_external_reference_forbidden",
            "The document refers to an external resource; nothing outside it is ever fetched.",
            "/",
        ) from None
    except ParseError as exc:
        raise UblRejected(
            "xml_malformed", f"The document is not well-formed XML: {shown(str(exc))}.", "/"
        ) from None
    except LookupError:  # an encoding Python does not know; _require_utf8 should stop it first
        raise UblRejected(
            "xml_encoding_unsupported", "The document must be encoded as UTF-8.", "/"
        ) from None
    if not isinstance(root, Element):  # defusedxml builds stdlib elements; this keeps mypy honest
        raise TypeError("defusedxml returned something other than an Element.")
    return root


def _require_utf8(document: bytes) -> None:
    """Peppol mandates UTF-8; anything else is refused before expat guesses an encoding."""
    if b"\x00" in document:  # never valid in XML 1.0; UTF-16/32 text is full of them
        raise UblRejected(
            "xml_not_utf8",
            "The document contains NUL bytes (UTF-16 or UTF-32?); it must be UTF-8.",
            "/",
        )
    body = document.removeprefix(b"\xef\xbb\xbf")
    # The declaration first: "you declared ISO-8859-1" says more than "byte 312 is not UTF-8".
    if body.startswith(b"<?xml"):
        end = body.find(b"?>")
        declared = _XML_ENCODING.search(body[: end if end >= 0 else len(body)])
        if declared is not None and declared[1].lower() != b"utf-8":
            name = declared[1].decode("utf-8", errors="replace")
            raise UblRejected(
                "xml_encoding_unsupported",
                f"The document declares encoding {shown(name, 40)}; it must be UTF-8.",
                "/",
            )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UblRejected(
            "xml_not_utf8",
            f"The document is not valid UTF-8 (byte {exc.start}); it must be UTF-8.",
            "/",
        ) from None


class Text(NamedTuple):
    value: str
    pointer: str


@dataclass(frozen=True, slots=True)
class Node:
    """An element and its readable path, e.g. /Invoice/cac:PaymentMeans[2]/cbc:PaymentID."""

    element: Element
    path: str

    def children(self, tag: str) -> list[Node]:
        # Clark notation ("{urn:...}Party") keeps findall on its C fast path; a prefix plus a
        # namespace map goes through ElementPath in Python, slow on 100,000 siblings.
        prefix, _, local = tag.partition(":")
        found = self.element.findall(f"{{{_NS[prefix]}}}{local}")
        if len(found) == 1:
            return [Node(found[0], f"{self.path}/{tag}")]
        return [Node(e, f"{self.path}/{tag}[{i}]") for i, e in enumerate(found, start=1)]

    def find(self, path: str, *, unique: bool = True) -> Node | None:
        """The element at ``path`` (tags joined by "/"); with ``unique``, refuse repeats."""
        node = self
        for tag in path.split("/"):
            found = node.children(tag)
            if not found:
                return None
            if unique and len(found) > 1:
                raise UblRejected(
                    "ubl_duplicate_element",
                    f"{tag} appears {len(found)} times in {node.path}; it may appear only once.",
                    found[1].path,
                )
            node = found[0]
        return node

    def text(self, path: str, *, unique: bool = True) -> Text | None:
        """The trimmed text at ``path``; None when absent or blank."""
        node = self.find(path, unique=unique)
        if node is None:
            return None
        value = (node.element.text or "").strip()
        return Text(value, node.path) if value else None


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def tag_name(tag: str) -> str:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return f"{local} in namespace {namespace}" if namespace else f"{local} (no namespace)"


def shown(text: str, limit: int = 120) -> str:
    """Untrusted text made safe to put in an error message."""
    cleaned = clean(FORBIDDEN_CHARS.sub("", clean(text)))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def clean(text: str) -> str:
    """Names and notes: internal line breaks and runs of whitespace become single spaces."""
    return " ".join(text.split())
