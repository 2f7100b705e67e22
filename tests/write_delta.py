"""Write a Parquet file as a Delta table with the deltalake package (the
delta-rs writer), twice, the second overwriting the first, so the table's
log has files added and then removed.

Usage: python write_delta.py PARQUET DELTA_DIR
"""
import sys

import pyarrow.parquet as pq
from deltalake import write_deltalake

table = pq.read_table(sys.argv[1])
write_deltalake(sys.argv[2], table.slice(0, 10), mode="overwrite")
write_deltalake(sys.argv[2], table, mode="overwrite")
print(f"delta table {sys.argv[2]}: {table.num_rows} rows, two commits")
