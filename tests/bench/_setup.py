"""Shared setup for the benchmarks: a fresh PostgreSQL database, Django, merchants, reporting.

Importing this module touches nothing; ``django_bootstrap()`` drops and recreates the bench
database, so call it before importing anything that needs the app registry.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import perf_counter
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ledger.events import ValidEvent

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/chainfin_bench"
_POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "postgis"}


# The ledger_entry columns a raw-SQL baseline writes: every column but the id.
ENTRY_COLUMNS = (
    "chain_id",
    "seq",
    "type",
    "source",
    "external_ref",
    "idempotency_key",
    "request_hash",
    "occurred_at",
    "recorded_at",
    "prev_hash",
    "hash",
    "body",
)


class BenchRefused(SystemExit):
    """The benchmark will not run here; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(f"bench: {message}")


def bench_database_url(default: str = DEFAULT_DATABASE_URL) -> str:
    """The database the benchmark drops and recreates: BENCH_DATABASE_URL or ``default``.

    DATABASE_URL is deliberately not read: it usually names a database someone cares about.
    """
    return os.environ.get("BENCH_DATABASE_URL") or default


def django_bootstrap(url: str) -> None:
    """Recreate the database at ``url``, set up Django on it and migrate.

    :raises BenchRefused: not PostgreSQL, a name that does not say "bench", or unreachable.
    """
    parts = urlsplit(url)
    if parts.scheme not in _POSTGRES_SCHEMES:
        raise BenchRefused(
            f"refusing to run on {parts.scheme or url!r}: the figures are PostgreSQL figures "
            "(SQLite serializes every append and has no server to compare against). "
            "Set BENCH_DATABASE_URL to a postgres:// URL."
        )
    name = parts.path.lstrip("/")
    # The database is dropped: a typo must not cost someone their development data.
    if "bench" not in name:
        raise BenchRefused(f"refusing to drop database {name!r}: its name must contain 'bench'.")
    _database_recreate(parts._replace(path="/postgres").geturl(), name)

    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ["DATABASE_URL"] = url
    # DEBUG keeps every query in connection.queries, which would grow and slow the timed loops.
    os.environ["DJANGO_DEBUG"] = "false"

    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    if connection.vendor != "postgresql":
        raise BenchRefused(f"Django is on {connection.vendor}, not PostgreSQL; refusing to run.")
    call_command("migrate", verbosity=0)


def statistics_gather() -> None:
    """ANALYZE every table, as autovacuum does on a running server whose tables grow.

    Autovacuum is off on the reference machine, so without this the planner never learns
    how large the tables have grown: prepared statements keep the generic plans made on the
    warm-up's nearly empty tables. One measured this way: paying invoices probed a merchant's
    invoices by merchant alone, linear in the merchant's invoices, where the statistics make it
    use (merchant, ref)'s unique index.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _database_recreate(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise BenchRefused(f"cannot reach PostgreSQL at {admin_url}: {exc}".strip()) from None


def machine_context() -> list[str]:
    """Lines describing where the figures come from; call after ``django_bootstrap()``."""
    import django
    import psycopg
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server_version,) = cursor.fetchone()
        cursor.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
            [["autovacuum", "fsync", "shared_buffers", "synchronous_commit", "work_mem"]],
        )
        settings = ", ".join(_setting(name, value, unit) for name, value, unit in cursor.fetchall())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = "/".join(f"{value:.2f}" for value in os.getloadavg())
    params = connection.settings_dict
    return [
        f"machine     {os.cpu_count()} CPUs ({usable} usable), {platform.machine()}, "
        f"load average {load}",
        f"software    Python {platform.python_version()}, Django {django.get_version()}, "
        f"psycopg {psycopg.__version__}",
        f"PostgreSQL  {server_version} at {params['HOST']}:{params['PORT']}/{params['NAME']}",
        f"            {settings}",
    ]


def _setting(name: str, value: str, unit: str | None) -> str:
    if unit == "8kB":
        return f"{name}={int(value) * 8 // 1024}MB"
    if unit == "kB":
        return f"{name}={int(value) // 1024}MB"
    return f"{name}={value}"


def merchants_create(count: int, *, code: str = "bench") -> list[int]:
    """Create a marketplace and ``count`` merchants through the services; return their ids."""
    from merchants.services import marketplace_create, merchant_onboard

    marketplace = marketplace_create(code=code, name="Bench Marketplace")
    return [
        merchant_onboard(
            legal_name=f"Bench Supplier {n} GmbH",
            country="DE",
            tax_id=f"DE{300000000 + n}",
            marketplace=marketplace,
            seller_id=f"bench-seller-{n}",
        ).pk
        for n in range(count)
    ]


def receivable_evidence(serial: object, amount: str, now: datetime) -> list[ValidEvent]:
    """Order, invoice ``INV-<serial>`` of ``amount`` EUR (due in 45 days) and a delivered
    shipment: what makes a receivable fundable, as ``tests/financing/conftest.py``'s
    ``Trade.fundable`` writes it."""
    from ledger.events import event_parse, format_timestamp

    order, invoice, shipment = f"ORD-{serial}", f"INV-{serial}", f"SHP-{serial}"
    today = now.date()
    invoiced = {
        "currency": "EUR",
        "amount": amount,
        "order_ref": order,
        "issue_date": (today - timedelta(days=15)).isoformat(),
        "due_date": (today + timedelta(days=45)).isoformat(),
        "debtor": {"kind": "marketplace", "name": "Bench Marketplace"},
    }
    events = [
        ("order.placed", order, {"currency": "EUR", "amount": amount}, 30),
        ("invoice.issued", invoice, invoiced, 15),
        ("shipment.dispatched", shipment, {"order_ref": order}, 25),
        ("shipment.delivered", shipment, {"order_ref": order}, 22),
    ]
    return [
        event_parse(
            {
                "type": type_,
                "ref": ref,
                "occurred_at": format_timestamp(now - timedelta(days=days_ago)),
                "data": data,
            }
        )
        for type_, ref, data, days_ago in events
    ]


def repayment_event(ref: str, now: datetime, amount: str) -> ValidEvent:
    """The ``advance.repaid`` system event a transfer of the benches and tests appends: a
    repayment of ``amount`` EUR on advance ``adv_<ref>``."""
    from ledger.events import system_event

    data = {"advance_ref": f"adv_{ref}", "currency": "EUR", "amount": amount}
    return system_event("advance.repaid", ref, now, data)


def timed(work: Callable[[], object]) -> float:
    """Seconds ``work`` took, by the monotonic high-resolution clock."""
    started = perf_counter()
    work()
    return perf_counter() - started


@dataclass
class Figure:
    """One measured rate, with every repetition kept so the spread can be shown."""

    label: str
    unit: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def spread(self) -> str:
        return " ".join(_number(sample) for sample in self.samples)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


@dataclass(frozen=True)
class Row:
    label: str
    value: str
    runs: str = ""
    target: str = ""
    verdict: str = ""


def figure_row(figure: Figure, *, target: str = "", verdict: str = "") -> Row:
    return Row(
        figure.label, f"{_number(figure.median)} {figure.unit}", figure.spread(), target, verdict
    )


def verdict(value: float, target: float) -> str:
    return "meets target" if value >= target else "below target"


def table_print(rows: Sequence[Row], *, out: TextIO | None = None) -> None:
    """Print ``rows`` as a left-aligned text table with a header."""
    header = Row("figure", "median", "each repetition", "target", "verdict")
    cells = [header, *rows]
    widths = [
        max(len(getattr(row, column)) for row in cells)
        for column in ("label", "value", "runs", "target")
    ]
    stream = out if out is not None else sys.stdout
    for index, row in enumerate(cells):
        line = "  ".join(
            [
                row.label.ljust(widths[0]),
                row.value.rjust(widths[1]),
                row.runs.ljust(widths[2]),
                row.target.ljust(widths[3]),
                row.verdict,
            ]
        )
        print(line.rstrip(), file=stream)
        if index == 0:
            print("-" * len(line.rstrip()), file=stream)
