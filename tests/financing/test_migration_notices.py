"""Financing migration 0003: existing webhook secrets are sealed, and still sign the same."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from merchants.credentials import secret_open

BEFORE = [("financing", "0005_price_certainty_overdue")]
AFTER = [("financing", "0006_notices_to_debtors")]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_existing_webhook_secrets_are_sealed_and_the_clear_column_dropped() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    marketplace = old.get_model("merchants", "Marketplace").objects.create(code="old", name="Old")
    old.get_model("financing", "WebhookEndpoint").objects.create(
        marketplace=marketplace, url="https://old.example/hook", secret="ab" * 32
    )

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    new = executor.loader.project_state(AFTER).apps
    sealed = bytes(new.get_model("financing", "WebhookEndpoint").objects.get().secret_sealed)
    assert b"ab" * 32 not in sealed
    assert secret_open(sealed) == "ab" * 32
    with connection.cursor() as cursor:
        columns = [
            c.name
            for c in connection.introspection.get_table_description(
                cursor, "financing_webhookendpoint"
            )
        ]
    assert "secret" not in columns

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # the rest of the suite's schema
