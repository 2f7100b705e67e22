"""Execute explore.ipynb top to bottom against a run directory, and check that
the run's Parquet files open in pyarrow and DuckDB with strata's metadata.

    python notebooks/run_notebook.py out/sample/2026-11 [executed.ipynb]

Exits non-zero (with the failing cell's error) when anything fails. Used by
the test suite (tests/report.rs) with the virtualenv that .ci/run creates.
"""
import os
import sys
from pathlib import Path

import duckdb
import nbformat
import pyarrow.parquet as pq
from nbclient import NotebookClient

run = Path(sys.argv[1]).resolve()
here = Path(__file__).resolve().parent

# 1. The notebook, top to bottom.
nb = nbformat.read(here / "explore.ipynb", as_version=4)
os.environ["STRATA_RUN"] = str(run)
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(here)}}).execute()
if len(sys.argv) > 2:
    nbformat.write(nb, sys.argv[2])
print(f"notebook: {sum(c.cell_type == 'code' for c in nb.cells)} code cells ran")

# 2. Other readers: pyarrow (pandas' Parquet engine) and DuckDB.
as_of = run.name
for name in ["assignments.parquet", "segments.parquet", "features.parquet"]:
    path = run / name
    meta = {k.decode(): v.decode() for k, v in (pq.read_metadata(path).metadata or {}).items()}
    assert meta.get("strata.as_of") == as_of, (name, meta)
    assert len(meta.get("strata.pipeline_sha256", "")) == 64, (name, meta)
    rows = pq.read_table(path).num_rows
    n = duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0][0]
    assert n == rows, (name, n, rows)
    kv = dict(duckdb.sql(f"select decode(key), decode(value) from parquet_kv_metadata('{path}')").fetchall())
    assert kv.get("strata.as_of") == as_of, (name, kv)
    print(f"{name}: {rows} rows; pyarrow and DuckDB read it with strata.as_of={as_of}")
