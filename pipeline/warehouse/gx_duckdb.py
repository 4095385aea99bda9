"""A Great Expectations datasource type for DuckDB that keeps one connection open.

GX's SQL engine reads query results after leaving `with engine.connect()`; closing a
duckdb-engine connection rolls back, which discards the pending result, so every column
expectation would come back empty and "fail" on clean data. GX keeps one persistent connection
for sqlite and a few others; this does the same for DuckDB. Importing this module registers
`context.data_sources.add_duckdb(...)`. (No `from __future__ import annotations` here: GX's
registry reads the `type` annotation at class creation.)
"""

import builtins
import contextlib
from collections.abc import Iterator
from typing import Literal

import sqlalchemy as sa
from great_expectations.datasource.fluent import SQLDatasource
from great_expectations.execution_engine import SqlAlchemyExecutionEngine


class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
    @contextlib.contextmanager
    def get_connection(self) -> Iterator[sa.Connection]:
        if self._connection is None or self._connection.closed:
            self._connection = self.engine.connect()
        yield self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        super().close()


class DuckDBDatasource(SQLDatasource):
    type: Literal["duckdb"] = "duckdb"  # type: ignore[assignment]  # GX registers subtypes this way

    @property
    def execution_engine_type(
        self,
    ) -> builtins.type[SqlAlchemyExecutionEngine]:  # `type` is a field here
        return DuckDBExecutionEngine


def release(datasource: SQLDatasource) -> None:
    """Closes every DuckDB handle GX holds for the datasource."""
    datasource.get_execution_engine().close()
    datasource.get_engine().dispose()
