#!/usr/bin/env bash
# Benchmark: the feature stage at N generated accounts (default 1,000,000) two
# ways, interleaved on the same machine: strata's own ingestion
# (`strata run --until features`, its ingest + features stages) against
# DuckDB running `strata sql --dialect duckdb`'s query and writing Parquet.
# Usage: benches/sql_vs_ingest.sh [ACCOUNTS] [ROUNDS]
# Needs a Python with duckdb (the test virtualenv: STRATA_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
ROUNDS="${2:-3}"
PY="${STRATA_PYTHON:-$HOME/.cache/strata-venv/bin/python}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/strata"
WORK="${BENCH_DIR:-/tmp/strata-bench}/$N-parquet"
if [ ! -f "$WORK/data/accounts.parquet" ]; then
  mkdir -p "$WORK"
  "$BIN" sample --accounts "$N" --seed 1 --format parquet --out "$WORK/data" --quiet
fi
sed -e "s#../data/sample/{as_of}/#$WORK/data/#" -e "s/^as_of = \"2026-11\"/as_of = \"2026-10\"/" \
    -e "s#../out/sample#$WORK/out#" -e 's/\.csv"/.parquet"/' pipelines/sample.toml > "$WORK/pipeline.toml"
"$BIN" sql "$WORK/pipeline.toml" --dialect duckdb > "$WORK/features.sql"
echo "accounts: $N; load: $(cut -d' ' -f1-3 /proc/loadavg); threads: $(nproc)"
for r in $(seq 1 "$ROUNDS"); do
  /usr/bin/time -f "round $r strata ingest+features: %e s wall, %M KiB peak" \
    "$BIN" run "$WORK/pipeline.toml" --until features --quiet --out "$WORK/out"
  "$PY" - "$WORK/out/2026-10/manifest.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["stage_seconds"]
print(f"  (manifest: ingest {s.get('ingest', 0):.1f} s, features {s.get('features', 0):.1f} s)")
PY
  /usr/bin/time -f "round $r duckdb query -> parquet: %e s wall, %M KiB peak" \
    "$PY" -c "import duckdb,sys; c = duckdb.connect(); c.execute(\"SET enable_progress_bar = false\"); c.execute(\"COPY (\" + open(sys.argv[1]).read() + \") TO '\" + sys.argv[2] + \"' (FORMAT parquet)\")" \
    "$WORK/features.sql" "$WORK/duckdb-features.parquet"
done
