"""Recompute strata's track record (last month's suggestions followed up) from
the two months' assignments.parquet and features.parquet alone, and compare it
with comparison.json's history.track_record.

Usage: python track_record.py PREVIOUS_MONTH_DIR CURRENT_MONTH_DIR VALUE_FEATURE
Prints one line per group; exits 1 on any difference.
"""
import json
import sys
from pathlib import Path

import polars as pl

prev_dir, cur_dir, value = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
prev = pl.read_parquet(prev_dir / "assignments.parquet").join(
    pl.read_parquet(prev_dir / "features.parquet").select(["account_id", value]), on="account_id"
)
cur = pl.read_parquet(cur_dir / "assignments.parquet").join(
    pl.read_parquet(cur_dir / "features.parquet").select(["account_id", value]), on="account_id"
)
now = {r["account_id"]: r for r in cur.iter_rows(named=True)}
tiers = json.loads((cur_dir / "comparison.json").read_text())["comparison"]["tiers"]["names"]
expected = json.loads((cur_dir / "comparison.json").read_text())["history"]["track_record"]


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return None
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


rows = []
for tier in tiers:
    in_tier = [r for r in prev.iter_rows(named=True) if r["current_tier"] == tier]
    if not any(r["exception"] is not None for r in in_tier):
        continue
    for flag in ["upgrade", "downgrade", "unflagged"]:
        group = [r for r in in_tier if (r["exception"] or "unflagged") == flag]
        if not group:
            continue
        left = moved = other = 0
        changes = []
        for r in group:
            c = now.get(r["account_id"])
            if c is None:
                left += 1
                continue
            if c["current_tier"] == tier:
                pass
            elif flag != "unflagged" and c["current_tier"] == r["suggested_tier"]:
                moved += 1
            else:
                other += 1
            a, b = c[value], r[value]
            if a is not None and b is not None and b > 0:
                changes.append((a - b) / b)
        rows.append((tier, flag, len(group), left, moved, other, median(changes)))

got = [
    (r["tier"], r["flag"], r["accounts"], r["left"], r["moved_as_suggested"], r["moved_otherwise"], r["value_change"])
    for r in expected["rows"]
]
bad = len(rows) != len(got)
for mine, theirs in zip(rows, got):
    same = mine[:6] == theirs[:6] and (
        (mine[6] is None and theirs[6] is None)
        or (mine[6] is not None and theirs[6] is not None and abs(mine[6] - theirs[6]) <= 1e-12 * max(1, abs(mine[6])))
    )
    print(("same " if same else "DIFFERENT ") + str(mine) + (" " if same else f" vs {theirs}"))
    bad |= not same
sys.exit(1 if bad else 0)
