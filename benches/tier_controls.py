#!/usr/bin/env python3
"""The tier comparison on planted data and on controls, for one or two strata binaries.

Scenarios (2,000 generated accounts each, seed 7):
  standard    the sample: 12/38/50% tiers, 4% planted mis-tiers
  shuffled    the same accounts with the tier column shuffled (a negative control:
              tiers unrelated to behaviour; the right answer is "none", ~no exceptions)
  imbalanced  `--tier-mix imbalanced`: 3/7/90% tiers with planted mis-tiers
  middle      `--tier-mix middle`: Hybrid is 40% of every segment, the majority of none
  noise       the sample plus a clustered feature of pure noise (uniform, independent of
              everything): reasons citing it, or two tier medians within 10% of each other,
              say nothing

For each: the verdict and AMI of k-means vs tiers, exceptions flagged, precision and
recall against the planted mis-tiers, and the share of correctly-tiered accounts of
each tier that were flagged (a tier flagged wholesale shows up here).

Usage: benches/tier_controls.py STRATA [OTHER_STRATA]   (needs Python polars)
Two binaries run interleaved on the same data, e.g. before and after a change.
"""
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parent.parent
TIERS = ["High Touch", "Hybrid", "Tech Touch"]


def generate(strata, work, mix):
    data = work / "data"
    args = [strata, "sample", "--accounts", "2000", "--seed", "7", "--out", str(data), "-q"]
    if mix in ("imbalanced", "middle"):
        args += ["--tier-mix", mix]
    subprocess.run(args, check=True)
    if mix == "noise":
        acc = pl.read_csv(data / "accounts.csv", infer_schema_length=0)
        rng = random.Random(5)
        acc.with_columns(pl.Series("noise", [f"{rng.uniform(0, 100):.3f}" for _ in range(acc.height)])).write_csv(data / "accounts.csv")
    if mix == "shuffled":
        acc = pl.read_csv(data / "accounts.csv", infer_schema_length=0)
        tiers = acc["cs_tier"].to_list()
        random.Random(11).shuffle(tiers)
        acc.with_columns(pl.Series("cs_tier", tiers)).write_csv(data / "accounts.csv")
    text = (REPO / "pipelines/sample.toml").read_text()
    text = (text.replace("../data/sample/{as_of}/", "data/")
                .replace('as_of = "2026-11"', 'as_of = "2026-10"')
                .replace("../out/sample", "out"))
    if mix == "noise":
        text += '\n[[feature]]\nname = "noise"\nexpr = "noise"\n'
    (work / "pipeline.toml").write_text(text)


def measure(strata, work, out):
    subprocess.run([strata, "run", "pipeline.toml", "--out", out, "-q"], cwd=work, check=True)
    a = pl.read_parquet(work / out / "2026-10" / "assignments.parquet")
    truth = pl.read_csv(work / "data" / "truth.csv")
    j = a.join(truth.select("account_id", "planted_exception"), on="account_id", how="left")
    cmp = json.loads((work / out / "2026-10" / "comparison.json").read_text())
    km = next(m for m in cmp["comparison"]["methods"] if m["method"] == "kmeans")
    flagged = j.filter(pl.col("exception").is_not_null())
    planted = j.filter(pl.col("planted_exception") != "none")
    right = flagged.filter(pl.col("exception") == pl.col("planted_exception")).height
    per_tier = {}
    for t in TIERS:
        ok = j.filter((pl.col("current_tier") == t) & (pl.col("planted_exception") == "none"))
        f = ok.filter(pl.col("exception").is_not_null()).height
        per_tier[t] = f"{f}/{ok.height}"
    # Calibration: per band (or, for a binary without bands, per confidence
    # range), flagged, mean confidence and the share right.
    calib = []
    if "band" in flagged.columns:
        bands = [(b, pl.col("band") == b) for b in ["strong", "likely", "needs review"]]
    else:
        bands = [(f"[{lo:.2f},{min(hi, 1):.2f})", (pl.col("confidence") >= lo) & (pl.col("confidence") < hi))
                 for lo, hi in [(0.95, 1.01), (0.8, 0.95), (0.0, 0.8)]]
    for name, cond in bands:
        b = flagged.filter(cond)
        if b.height:
            ok = b.filter(pl.col("exception") == pl.col("planted_exception")).height
            calib.append(f"{name}: {b.height} flagged, mean confidence {b['confidence'].mean():.2f}, right {ok / b.height:.2f}")
    top = flagged.sort("exception_rank").head(20)
    top_right = top.filter(pl.col("exception") == pl.col("planted_exception")).height
    exc = cmp["comparison"]["exceptions"]
    no_reason = sum(1 for e in exc if not e["reasons"])
    reasons = [r for e in exc for r in e["reasons"]]
    def close(r):
        a, b = r["current_tier_median"], r["suggested_tier_median"]
        if a is None or b is None:
            return False
        return abs(a - b) <= 0.1 * max(abs(a), abs(b))
    near = sum(1 for r in reasons if close(r))
    noise = sum(1 for r in reasons if r["feature"] == "noise")
    return {
        "top20": f"{top_right}/{top.height}",
        "no reason": f"{no_reason}/{len(exc)}",
        "reasons": f"{len(reasons)} reasons, {near} with medians within 10%, {noise} citing noise",
        "calibration": "; ".join(calib),
        "verdict": km.get("verdict", "-"),
        "ami": (km.get("agreement") or {}).get("ami"),
        "flagged": flagged.height,
        "share": flagged.height / j.height,
        "planted": planted.height,
        "precision": right / flagged.height if flagged.height else float("nan"),
        "recall": right / planted.height if planted.height else float("nan"),
        "correct flagged": per_tier,
    }


def main():
    binaries = sys.argv[1:] or [str(REPO / "target/release/strata")]
    print("scenario    binary  verdict   AMI    flagged (share)  precision recall  correctly-tiered accounts flagged, per tier")
    for mix in ["standard", "shuffled", "imbalanced", "middle", "noise"]:
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            generate(binaries[-1], work, mix)
            for i, b in enumerate(binaries):
                r = measure(b, work, f"out{i}")
                ami = "-" if r["ami"] is None else f"{r['ami']:.3f}"
                print(f"{mix:<11} {i:<7} {r['verdict']:<9} {ami:<6} {r['flagged']:>4} ({r['share']:.1%})     "
                      f"{r['precision']:.3f}     {r['recall']:.3f}   {r['correct flagged']}")
                print(f"{'':<20}top 20 right: {r['top20']}; flagged with no feature reason: {r['no reason']}; {r['reasons']}")
                if r["calibration"] and mix != "shuffled":
                    print(f"{'':<20}{r['calibration']}")


if __name__ == "__main__":
    main()
