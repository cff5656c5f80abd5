"""Migration operations that build or drop an index without blocking writes, where the database
can.

On PostgreSQL the index is built or dropped CONCURRENTLY, outside a transaction (the migration
sets ``atomic = False``): appends go on while a large table is indexed. An interrupted build
leaves an invalid index, which the migration, not recorded as applied, drops before building
again. Elsewhere (SQLite, the demo) they are a plain ``AddIndex`` and ``RemoveIndex``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex
from django.db.migrations.operations.base import Operation


class _PlainElsewhere:
    """Runs the concurrent operation on PostgreSQL and ``plain`` (its ordinary twin) elsewhere."""

    plain: type[Operation]

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)  # type: ignore[arg-type]
            return
        self.before_forwards(schema_editor)
        super().database_forwards(app_label, schema_editor, from_state, to_state)  # type: ignore[misc]

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)  # type: ignore[arg-type]
            return
        super().database_backwards(app_label, schema_editor, from_state, to_state)  # type: ignore[misc]

    def before_forwards(self, schema_editor: Any) -> None:
        """What PostgreSQL runs first; nothing unless a subclass says."""


class AddIndexConcurrentlyOnPostgreSQL(_PlainElsewhere, AddIndexConcurrently):
    """``AddIndexConcurrently`` on PostgreSQL, a plain ``AddIndex`` elsewhere."""

    plain = AddIndex

    def before_forwards(self, schema_editor: Any) -> None:
        # An interrupted earlier build left an invalid index of this name: build it afresh.
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {self.index.name}")


class RemoveIndexConcurrentlyOnPostgreSQL(_PlainElsewhere, RemoveIndexConcurrently):
    """``RemoveIndexConcurrently`` on PostgreSQL, a plain ``RemoveIndex`` elsewhere."""

    plain = RemoveIndex
