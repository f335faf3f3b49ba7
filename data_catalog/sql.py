"""SQL over the catalog: one DuckDB view per manifest, reading every part of every scene and run.

    >>> con = connect(Catalog(root))                               # doctest: +SKIP
    >>> con.sql("select scene, count(*), sum(duration) from videos group by scene").df()

Counts per drop reason are a ``group by reason`` away. Manifests with no parts yet are empty views with
the right columns, so queries work on a fresh catalog.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from data_catalog.io import Catalog
from data_catalog.schemas import MANIFESTS


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def connect(catalog: Catalog) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per manifest."""
    con = duckdb.connect(":memory:")
    for name, manifest in MANIFESTS.items():
        files = [str(p) for p in catalog.part_files(name)]
        if files:
            con.execute(
                f"create view {name} as select * from read_parquet({_sql_list(files)}, union_by_name=true)"
            )
        else:
            # An empty view with the schema's columns: register an empty Arrow table.
            con.register(f"_{name}_empty", manifest.schema.empty_table())
            con.execute(f"create view {name} as select * from _{name}_empty")
    return con


def query(catalog: Catalog, sql: str) -> pd.DataFrame:
    """Run one SQL statement against the catalog's views; errors name the statement."""
    con = connect(catalog)
    try:
        return con.sql(sql).df()
    except duckdb.Error as exc:
        raise ValueError(f"SQL failed: {exc}\nstatement: {sql}") from None
    finally:
        con.close()
