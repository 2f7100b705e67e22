"""Read strata's segment-history Delta table back with two other readers
(delta-rs's Python `deltalake`, and Polars) and check that each month's
partition holds exactly the rows of that month's assignments.parquet.

Usage: python delta_readback.py OUTPUT_FOLDER EXPECTED_VERSION
Prints one line per month and the table version; exits 1 on any difference.
"""
import sys
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

root, expected = Path(sys.argv[1]), int(sys.argv[2])
table = root / "segment_history"
dt = DeltaTable(str(table))
assert dt.metadata().partition_columns == ["as_of"], dt.metadata().partition_columns
assert dt.version() == expected, f"version {dt.version()}, expected {expected}"
by_deltalake = pl.from_arrow(dt.to_pyarrow_table())
by_polars = pl.read_delta(str(table))
months = sorted(p.name for p in root.iterdir() if (p / "_SUCCESS").exists())
assert sorted(by_polars["as_of"].unique().to_list()) == months, (months, by_polars["as_of"].unique())
for m in months:
    a = pl.read_parquet(root / m / "assignments.parquet")
    a = a.with_columns([pl.col(c).cast(pl.Int64) for c, t in a.schema.items() if t == pl.UInt32])
    for name, t in [("deltalake", by_deltalake), ("polars", by_polars)]:
        part = t.filter(pl.col("as_of") == m).select(a.columns)
        assert part.height == a.height, (name, m, part.height, a.height)
        assert part.sort("account_id").equals(a.sort("account_id")), (name, m)
    print(f"{m}: {a.height} rows, the same through deltalake and polars")
# Every data file in the partitions is one a commit added (no leftover of a
# write cut short) and is a whole Parquet file.
import json
added = set()
for log in (table / "_delta_log").glob("*.json"):
    for line in log.read_text().splitlines():
        if line.strip():
            a = json.loads(line).get("add")
            if a:
                added.add(a["path"])
for f in table.glob("as_of=*/*"):
    rel = f"{f.parent.name}/{f.name}"
    assert rel in added, f"{rel} is in the table's folder but no commit added it"
    data = f.read_bytes()
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1", f"{rel} is not a whole Parquet file"
print(f"{len(list(table.glob('as_of=*/*')))} data files, each added by a commit and whole")
# Time travel: version 0 is the first month alone.
first = pl.read_delta(str(table), version=0)
print(f"version 0: {sorted(first['as_of'].unique().to_list())}; now version {dt.version()}")
