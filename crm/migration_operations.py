"""Migration operations for the monthly partitions (crm.partitions).

`PartitionByMonth` makes a table partitioned on PostgreSQL; `UnlessPartitioned` runs a schema
operation everywhere else (SQLite), where the table stays plain. A migration pairs them in a
SeparateDatabaseAndState: the state moves as the operations say on every database, and on
PostgreSQL the partitioned table is built in that final shape at once.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from crm.partitions import Spec, convert


class PartitionByMonth(Operation):
    """Partition `spec.table` by month on PostgreSQL (see crm.partitions.convert). Not atomic:
    the migration holding it sets `atomic = False`, so indexes build while writes go on."""

    reversible = False
    atomic = False

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        convert(schema_editor.connection, self.spec)

    def describe(self) -> str:
        return f"Partition {self.spec.table} by month (PostgreSQL)"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [self.spec], {})


class UnlessPartitioned(Operation):
    """Run `operation` on the database unless it is PostgreSQL (whose table PartitionByMonth
    builds in the final shape); the state is the SeparateDatabaseAndState's."""

    reversible = True

    def __init__(self, operation: Operation) -> None:
        self.operation = operation

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        self.operation.state_forwards(app_label, state)

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            self.operation.database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        if schema_editor.connection.vendor != "postgresql":
            self.operation.database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self) -> str:
        return f"{self.operation.describe()} (unless PostgreSQL)"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [self.operation], {})
