"""config/distribution.py places every table of the project once, and every distributed table
has the merchant column it names: a new table must say where it goes."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection

from config.distribution import BANK_WIDE, DISTRIBUTED, REFERENCE, WRITTEN_BESIDE

PROJECT_APPS = {"merchants", "ledger", "financing", "books"}

pytestmark = pytest.mark.django_db


def _project_tables() -> set[str]:
    return {
        model._meta.db_table
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in PROJECT_APPS and not model._meta.proxy
    }


def test_every_distributed_table_has_its_merchant_column() -> None:
    with connection.cursor() as cursor:
        for table, column in DISTRIBUTED.items():
            described = connection.introspection.get_table_description(cursor, table)
            assert column in {c.name for c in described}, f"{table} has no {column}"


def test_every_project_table_is_placed_exactly_once() -> None:
    placed = [*DISTRIBUTED, *REFERENCE, *BANK_WIDE]
    assert len(placed) == len(set(placed)), "a table is placed twice"
    assert set(placed) == _project_tables()


def test_what_is_written_beside_is_bank_wide() -> None:
    assert set(WRITTEN_BESIDE) <= set(BANK_WIDE)
