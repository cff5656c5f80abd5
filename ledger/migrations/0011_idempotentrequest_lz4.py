"""Stored API responses compressed with lz4 instead of pglz (PostgreSQL's default).

A 1,000-event batch's response is ~260 kB of receipts, stored with its Idempotency-Key for
replays: pglz took ~4 ms of PostgreSQL CPU to compress it, lz4 ~1 ms. A server built without
lz4 keeps pglz. SQLite has no such setting.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

_SET = """
DO $$
BEGIN
    ALTER TABLE ledger_idempotentrequest ALTER COLUMN response_body SET COMPRESSION {method};
EXCEPTION WHEN feature_not_supported THEN
    NULL;  -- built without lz4: responses stay compressed with pglz
END $$;
"""


def _compression(method: str) -> Any:
    def apply(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(_SET.format(method=method))

    return apply


class Migration(migrations.Migration):
    dependencies = [("ledger", "0010_log_queue_carries_the_chain")]

    operations = [migrations.RunPython(_compression("lz4"), _compression("pglz"))]
