#!/usr/bin/env bash
# Side-by-side: strata's cluster stages vs the reference Python pipeline
# (scikit-learn + pynndescent + igraph + leidenalg) on the same feature matrix.
# Usage: benches/cluster_vs_peer.sh [N] [D] [K]     (default 1000000 32 8)
# Needs python3; installs the peer's packages into ~/.peer once.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"; D="${2:-32}"; K="${3:-8}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/strata"
WORK="${BENCH_DIR:-/tmp/strata-bench}/blobs-$N-$D-$K"
mkdir -p "$WORK"
PEER="${PEER_VENV:-$HOME/.peer}"
if [ ! -x "$PEER/bin/python" ]; then
  python3 -m venv "$PEER"
  "$PEER/bin/pip" install --quiet scikit-learn igraph leidenalg polars pyarrow pynndescent
fi
PEER_PY="$(dirname "$0")/peer_pipeline.py"
[ -f "$PEER_PY" ] || PEER_PY="../shared/bench/peer_pipeline.py"
BLOBS_PY="$(dirname "$0")/blobs.py"
[ -f "$BLOBS_PY" ] || BLOBS_PY="../shared/bench/blobs.py"
if [ ! -f "$WORK/blobs.parquet" ]; then
  "$PEER/bin/python" "$BLOBS_PY" "$N" "$D" "$K" "$WORK/raw.parquet"
  "$PEER/bin/python" -c "import polars as pl,sys; pl.read_parquet(sys.argv[1]).with_row_index('id').with_columns(pl.format('B{}', pl.col('id')).alias('id')).write_parquet(sys.argv[2])" "$WORK/raw.parquet" "$WORK/blobs.parquet"
fi
for ALG in louvain leiden; do
  {
    echo "[run]"; echo "as_of = \"2026-10\""; echo "output = \"out-$ALG\""; echo "seed = 42"
    echo "[sources.m]"; echo "path = \"blobs.parquet\""; echo "id = \"id\""
    for i in $(seq 0 $((D-1))); do echo "[[feature]]"; echo "name = \"f$i\""; echo "expr = \"f$i\""; done
    echo "[kmeans]"; echo "k = $K"; echo "restarts = 1"
    echo "[graph]"; echo "neighbors = 15"; echo "weighting = \"${WEIGHTING:-snn}\""
    echo "[community]"; echo "algorithm = \"$ALG\""; echo "min_size = 1"
    echo "[stability]"; echo "runs = 0"
  } > "$WORK/$ALG.toml"
  echo "== strata ($ALG)"
  /usr/bin/time -f "strata: %e s wall, %M KiB peak RSS" "$BIN" run "$WORK/$ALG.toml" --quiet
  python3 - "$WORK/out-$ALG/2026-10" <<'PY'
import json, sys
d = sys.argv[1]
m = json.load(open(d + "/manifest.json")); c = json.load(open(d + "/comparison.json"))
print("stages:", {k: round(v, 2) for k, v in m["stage_seconds"].items()})
for s in c["segmentations"]:
    det = s["details"]
    extra = {k: det[k] for k in ("inertia", "modularity", "detect_seconds") if k in det}
    if "graph" in det: extra["graph"] = det["graph"]
    print(s["method"], "k =", len(s["sizes"]), extra)
PY
done
echo "== peer"
/usr/bin/time -f "peer: %e s wall, %M KiB peak RSS" "$PEER/bin/python" "$PEER_PY" "$WORK/blobs.parquet" --label label --id id -k "$K" --knn 15
