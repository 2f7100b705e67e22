#!/usr/bin/env bash
# Benchmark: ingestion + features for N generated accounts (default 1,000,000).
# Prints wall time per stage (from the run's manifest) and the peak resident memory.
# Usage: benches/ingest_1m.sh [ACCOUNTS] [csv|parquet]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
FMT="${2:-parquet}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/strata"
WORK="${BENCH_DIR:-/tmp/strata-bench}/$N-$FMT"
if [ ! -f "$WORK/data/accounts.$FMT" ]; then
  mkdir -p "$WORK"
  /usr/bin/time -f "sample: %e s wall, %M KiB peak" "$BIN" sample --accounts "$N" --seed 1 --format "$FMT" --out "$WORK/data" --quiet
fi
sed -e "s#../data/sample/{as_of}/#$WORK/data/#" -e "s/^as_of = \"2026-11\"/as_of = \"2026-10\"/" -e "s#../out/sample#$WORK/out#" pipelines/sample.toml > "$WORK/pipeline.toml"
if [ "$FMT" = parquet ]; then sed -i 's/\.csv"/.parquet"/' "$WORK/pipeline.toml"; fi
/usr/bin/time -f "strata run: %e s wall, %M KiB peak RSS" "$BIN" run "$WORK/pipeline.toml" --quiet
python3 - "$WORK/out/2026-10/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print("accounts:", m["accounts"], " threads:", m["threads"])
for k, v in m["stage_seconds"].items():
    print(f"  {k:10s} {v:8.2f} s")
PY
