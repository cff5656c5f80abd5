"""camt.053 / camt.054 reading: every shared sample parsed, hostile files refused whole."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from financing.reconciliation.camt import FileRefused, camt_parse

FORMATS = Path(__file__).resolve().parents[3] / ".." / "shared" / "formats"
LIMIT = 20 * 1024 * 1024

# file: (format, message id, [entries per statement], (direction, amount, currency) of entry 0)
SAMPLES = {
    "camt053/fkl-fi-camt053.001.02-sample.xml": (
        "camt.053.001.02",
        "BANKFILEID00001",
        [10],
        ("debit", 100012, "EUR"),
    ),
    "camt053/genkgo-camt053.v2.all-balance-types.xml": (
        "camt.053.001.02",
        "CAMT05300000001",
        [1],
        ("credit", 885, "EUR"),
    ),
    "camt053/genkgo-camt053.v2.minimal.xml": (
        "camt.053.001.02",
        "CAMT053RIB000000000001",
        [1],
        ("credit", 885, "EUR"),
    ),
    "camt053/genkgo-camt053.v2.multi.statement.xml": (
        "camt.053.001.02",
        "CAMT053RIB000000000001",
        [1, 1],
        ("credit", 885, "EUR"),
    ),
    "camt053/genkgo-camt053.v8.xml": (
        "camt.053.001.08",
        "CAMT053RIB000000000001",
        [1],
        ("credit", 885, "EUR"),
    ),
    "camt053/lt-camt053.001.02-statement_1.xml": (
        "camt.053.001.02",
        "201509302599406884",
        [4],
        ("debit", 164, "EUR"),
    ),
    "camt053/postfinance-ch-camt053.001.04-sample.xml": (
        "camt.053.001.04",
        "20201124375204229003967",
        [5],
        ("credit", 450, "CHF"),
    ),
    "camt054/fkl-fi-camt054.001.02-sample.xml": (
        "camt.054.001.02",
        "BANKFILEID219073",
        [6],
        ("credit", 200000, "EUR"),
    ),
    "camt054/genkgo-camt054.v2.xml": (
        "camt.054.001.02",
        "AAAASESS-FP-ACCR001",
        [1],
        ("debit", 20000000, "SEK"),
    ),
    "camt054/genkgo-camt054.v8.xml": (
        "camt.054.001.08",
        "AAAASESS-FP-ACCR001",
        [1],
        ("debit", 20000000, "SEK"),
    ),
    "camt054/postfinance-ch-camt054.001.04-credit.xml": (
        "camt.054.001.04",
        "201904245375204223076552",
        [1],
        ("credit", 150000, "CHF"),
    ),
    "camt054/postfinance-ch-camt054.001.04-esr-batch.xml": (
        "camt.054.001.04",
        "20190424375204228750928",
        [2],
        ("credit", 153700, "CHF"),
    ),
}


def test_every_shared_camt_file_is_listed_here() -> None:
    on_disk = {
        f"{p.parent.name}/{p.name}"
        for folder in ("camt053", "camt054")
        for p in (FORMATS / folder).glob("*.xml")
    }
    assert on_disk == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_shared_camt_file_is_parsed(name: str) -> None:
    file_format, message_id, counts, first = SAMPLES[name]

    message = camt_parse((FORMATS / name).read_bytes(), max_bytes=LIMIT)

    assert message.file_format == file_format
    assert message.kind == file_format[:8]
    assert message.message_id == message_id
    assert [len(s.entries) for s in message.statements] == counts
    entry = message.statements[0].entries[0]
    assert (entry.direction, entry.amount_minor, entry.currency) == first
    for statement in message.statements:
        assert "•" in statement.account_iban_masked  # the account is never kept in full


def test_a_batch_credit_keeps_each_transactions_end_to_end_id_reference_and_amount() -> None:
    data = (FORMATS / "camt054/postfinance-ch-camt054.001.04-esr-batch.xml").read_bytes()
    [statement] = camt_parse(data, max_bytes=LIMIT).statements
    batch = statement.entries[0]

    assert batch.booked and batch.entry_ref == "07582000303KBMSU"
    assert batch.end_to_end_ids[:2] == ["EndToEndId-001-02-02", "EndToEndId-001-02-01"]
    assert sum(d["amount_minor"] for d in batch.details) == batch.amount_minor
    assert batch.details[0]["reference"] == "120000000000234478943216899"


def test_a_version_8_status_code_and_party_name_are_read() -> None:
    data = (FORMATS / "camt053/genkgo-camt053.v8.xml").read_bytes()
    [entry] = camt_parse(data, max_bytes=LIMIT).statements[0].entries
    assert entry.booked
    assert entry.counterparty_name == "NAME NAME"
    assert entry.end_to_end_ids == ["MUELL/FINP/RA12345"]
    # Its detail is in SEK, the entry in EUR: the detail's amount says nothing about the entry.
    assert entry.details[0]["amount_minor"] is None


MINIMAL = (FORMATS / "camt053/genkgo-camt053.v2.minimal.xml").read_bytes()
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&lol3;</Document>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr>
<MsgId>&xxe;</MsgId></GrpHdr></BkToCstmrStmt></Document>"""


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (MINIMAL[: len(MINIMAL) // 2], "not well-formed XML (truncated?)"),
        (MINIMAL.replace(b"camt.053.001.02", b"camt.052.001.02"), "expected a Document"),
        (MINIMAL.replace(b"camt.053.001.02", b"camt.053.001.06"), "version .001.02, .001.04"),
        (XXE, "DTD or entity declaration"),
        (BILLION_LAUGHS, "DTD or entity declaration"),
        (MINIMAL.replace(b"NAME NAME", "NÄME".encode("latin-1")), "not UTF-8: byte 0xc4"),
        (MINIMAL.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'), "ISO 20022 messages"),
        (b"", "The file is empty."),
        (MINIMAL.replace(b'<Amt Ccy="EUR">8.85</Amt>', b'<Amt Ccy="EUR">-8.85</Amt>'), "entry 1"),
        (
            re.sub(rb"(8\.85</Amt>\s*<CdtDbtInd>)CRDT", rb"\1X", MINIMAL),
            "CdtDbtInd",
        ),
    ],
    ids=[
        "truncated",
        "wrong-message",
        "unsupported-version",
        "xxe",
        "billion-laughs",
        "latin1-bytes",
        "declared-latin1",
        "empty",
        "negative-amount",
        "bad-indicator",
    ],
)
def test_a_hostile_or_broken_file_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(FileRefused) as refused:
        camt_parse(data, max_bytes=LIMIT)
    assert reason in refused.value.reason


def test_a_50_mb_file_is_refused_before_it_is_parsed() -> None:
    huge = MINIMAL.replace(b"</Document>", b"<!--" + b"x" * (50 * 1024 * 1024) + b"--></Document>")
    with pytest.raises(FileRefused, match="the limit is 20,971,520 bytes"):
        camt_parse(huge, max_bytes=LIMIT)
