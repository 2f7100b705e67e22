#!/usr/bin/env bash
# End to end, strata vs the Python peer (../shared/bench/peer_e2e.py: Polars +
# scikit-learn + pynndescent + leidenalg, the same features as
# pipelines/sample.toml), on generated sample data at each size given.
#
#   benches/e2e_vs_peer.sh [SIZES...]        default: 100000 1000000 10000000
#   PEER=0 benches/e2e_vs_peer.sh 10000000   strata only (the peer at 10M takes hours)
#   ROUNDS=2 benches/e2e_vs_peer.sh 100000   each side twice, interleaved
#
# For each size: generates the data once (`strata sample --format parquet`,
# timed, with its peak RSS), then runs strata and the peer interleaved
# (strata, peer, strata, peer, ... for ROUNDS rounds), each under
# /usr/bin/time, and prints wall seconds, peak RSS and the per-stage seconds
# of both sides (strata's from its manifest, the peer's from its JSON), then
# the ratios. Timings on these shared 2-core machines move by about ±20%:
# quote ranges and ratios from one session, never absolute numbers alone.
# Needs python3; installs the peer's packages into $PEER_VENV (~/.peer) once.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100000 1000000 10000000)
ROUNDS="${ROUNDS:-1}"
RUN_PEER="${PEER:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/strata"
ROOT="${BENCH_DIR:-/tmp/strata-bench}"
PEER_PY="${PEER_E2E:-../shared/bench/peer_e2e.py}"
VENV="${PEER_VENV:-$HOME/.peer}"
if [ "$RUN_PEER" = 1 ]; then
  [ -f "$PEER_PY" ] || { echo "no peer at $PEER_PY (set PEER_E2E, or PEER=0 for strata only)" >&2; exit 1; }
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet scikit-learn igraph leidenalg polars pyarrow pynndescent
  fi
fi

# timed LOG CMD...: run CMD under /usr/bin/time, appending "wall_s peak_kib" to LOG.
timed() {
  local log="$1"; shift
  /usr/bin/time -f "%e %M" -o "$log.time" "$@"
  cat "$log.time" >> "$log"
}

for N in "${SIZES[@]}"; do
  WORK="$ROOT/e2e-$N"
  mkdir -p "$WORK"
  if [ ! -f "$WORK/data/accounts.parquet" ]; then
    rm -rf "$WORK/data"
    timed "$WORK/sample.log" "$BIN" sample --accounts "$N" --seed 1 --format parquet --out "$WORK/data" --quiet
  fi
  sed -e "s#^path = \"\.\./data/sample/{as_of}/\([a-z]*\)\.csv\"#path = \"$WORK/data/\1.parquet\"#" \
      -e "s#^output = .*#output = \"$WORK/out\"#" -e 's/^as_of = "2026-11"/as_of = "2026-10"/' \
      pipelines/sample.toml > "$WORK/pipeline.toml"
  grep -q "$WORK/data/usage.parquet" "$WORK/pipeline.toml" || { echo "could not point the pipeline at $WORK/data" >&2; exit 1; }
  AS_OF="$(sed -n 's/^as_of = "\([0-9-]*\)".*/\1/p' "$WORK/pipeline.toml" | head -1)"
  : > "$WORK/strata.log"; : > "$WORK/peer.log"
  for r in $(seq "$ROUNDS"); do
    rm -rf "$WORK/out"
    timed "$WORK/strata.log" "$BIN" run "$WORK/pipeline.toml" --quiet
    cp "$WORK/out/$AS_OF/manifest.json" "$WORK/strata-manifest-$r.json"
    if [ "$RUN_PEER" = 1 ]; then
      rm -rf "$WORK/peer-out"
      timed "$WORK/peer.log" "$VENV/bin/python" "$PEER_PY" "$WORK/data" "$AS_OF" "$WORK/peer-out" \
        --truth "$WORK/data/truth.csv" > "$WORK/peer-$r.json"
    fi
  done
  python3 - "$WORK" "$N" "$ROUNDS" "$RUN_PEER" <<'PY'
import json, sys, pathlib
work, n, rounds, peer = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
def runs(log):
    p = work / log
    if not p.exists():
        return []
    return [tuple(map(float, l.split())) for l in p.read_text().split("\n") if l.strip()]
def span(xs, fmt):
    return fmt.format(min(xs)) if min(xs) == max(xs) else (fmt + "–" + fmt).format(min(xs), max(xs))
print(f"\n=== {n:,} accounts ===")
for wall, kib in runs("sample.log"):
    print(f"strata sample: {wall:.1f} s, peak RSS {kib / 1048576:.2f} GiB")
s, q = runs("strata.log"), runs("peer.log") if peer else []
rows = [("strata", s)] + ([("peer", q)] if peer else [])
for name, r in rows:
    print(f"{name:7s} wall {span([x[0] for x in r], '{:.1f}')} s   peak RSS {span([x[1] / 1048576 for x in r], '{:.2f}')} GiB")
if peer and s and q:
    print(f"ratio   wall peer/strata {min(x[0] for x in q) / max(x[0] for x in s):.1f}–{max(x[0] for x in q) / min(x[0] for x in s):.1f}×"
          f"   peak RSS strata/peer {min(x[1] for x in s) / max(x[1] for x in q):.2f}–{max(x[1] for x in s) / min(x[1] for x in q):.2f}")
stages = {}
for r in range(1, rounds + 1):
    m = json.loads((work / f"strata-manifest-{r}.json").read_text())
    for k, v in m["stage_seconds"].items():
        stages.setdefault(("strata", k), []).append(v)
    if peer:
        p = json.loads((work / f"peer-{r}.json").read_text())
        for k, v in (p.get("stages") or p.get("stage_seconds") or {}).items():
            stages.setdefault(("peer", k), []).append(v)
print("per-stage seconds:")
for side in ["strata", "peer"]:
    items = [(k, v) for (sd, k), v in stages.items() if sd == side]
    if items:
        print(f"  {side}: " + ", ".join(f"{k} {span(v, '{:.1f}')}" for k, v in items))
PY
done
