"""Run `strata sql`'s queries on real engines and compare every feature
with strata's own features.parquet: equal within 1e-9 relative, with the
same missing values, for every account.

Usage: python sql_engines.py OUT_DIR CASE [CASE ...]
  each CASE is NAME:SQL_DUCKDB:SQL_SPARK:FEATURES_PARQUET[:TABLES]
  TABLES (for sources read by `table` name): NAME=FILE,... each made a
  table by the engine itself, with its own type inference (dates may
  arrive as dates, numbers as integers), before the query runs
Writes OUT_DIR/NAME-duckdb.parquet and OUT_DIR/NAME-spark (a folder of
Spark part files) and prints one line per case and engine; exits 1 on the
first difference. One local Spark session serves every case.
"""
import math
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq


def statements(text):
    return [s.strip() for s in text.split(";\n") if s.strip() and not all(
        l.startswith("--") or not l.strip() for l in s.strip().splitlines())]


def compare(name, engine, got, want):
    assert got.column_names == want.column_names, (name, engine, got.column_names, want.column_names)
    g = {c: got.column(c).to_pylist() for c in got.column_names}
    w = {c: want.column(c).to_pylist() for c in want.column_names}
    ids_g, ids_w = g["account_id"], w["account_id"]
    assert ids_g == ids_w, f"{name} {engine}: accounts differ ({len(ids_g)} vs {len(ids_w)})"
    worst = 0.0
    for c in want.column_names:
        for i, (a, b) in enumerate(zip(g[c], w[c])):
            if a is None or b is None:
                assert a is None and b is None, f"{name} {engine}: {c} of {ids_w[i]} is {a!r}, strata {b!r}"
            elif isinstance(b, float):
                rel = abs(a - b) / max(abs(b), 1e-300) if b != 0 else abs(a)
                worst = max(worst, rel)
                assert rel <= 1e-9, f"{name} {engine}: {c} of {ids_w[i]} is {a!r}, strata {b!r}"
            else:
                assert a == b, f"{name} {engine}: {c} of {ids_w[i]} is {a!r}, strata {b!r}"
    print(f"{name} {engine}: {len(ids_w)} accounts x {len(want.column_names) - 1} features equal (worst relative difference {worst:.1e})")


def main():
    out = Path(sys.argv[1])
    cases = [c.split(":", 4) for c in sys.argv[2:]]
    spark = None
    for case in cases:
        name, duck_sql, spark_sql, features = case[:4]
        tables = [t.split("=", 1) for t in case[4].split(",")] if len(case) > 4 else []
        want = pq.read_table(features)
        want = want.select([c for c in want.column_names if not c.startswith("x__")])
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        for t, f in tables:
            reader = "read_parquet" if f.endswith(".parquet") else "read_csv_auto"
            con.execute(f"CREATE TABLE {t} AS SELECT * FROM {reader}('{f}')")
        q = Path(duck_sql).read_text()
        target = out / f"{name}-duckdb.parquet"
        con.execute(f"COPY ({q}) TO '{target}' (FORMAT parquet)")
        compare(name, "duckdb", pq.read_table(target), want)
        if spark is None:
            from pyspark.sql import SparkSession
            spark = (SparkSession.builder.master("local[2]").appName("strata-sql-test")
                     .config("spark.ui.enabled", "false")
                     .config("spark.ui.showConsoleProgress", "false")
                     .config("spark.sql.session.timeZone", "UTC")
                     .config("spark.driver.host", "127.0.0.1")
                     .getOrCreate())
            spark.sparkContext.setLogLevel("ERROR")
        for t, f in tables:
            reader = spark.read.option("header", True).option("inferSchema", True)
            df = reader.parquet(f) if f.endswith(".parquet") else reader.csv(f)
            df.createOrReplaceTempView(t)
        parts = statements(Path(spark_sql).read_text())
        for s in parts[:-1]:
            spark.sql(s)
        folder = out / f"{name}-spark"
        spark.sql(parts[-1]).write.mode("overwrite").parquet(str(folder))
        got = pq.read_table(folder).sort_by("account_id")
        got = got.select(want.column_names) if set(got.column_names) == set(want.column_names) else got
        compare(name, "spark", got, want)
    if spark is not None:
        spark.stop()


if __name__ == "__main__":
    main()
