#!/usr/bin/env python3
"""Where a run's memory peaks: resident memory sampled between the trace lines.

`STRATA_TRACE` prints RSS only at its own lines, so a peak between two lines
goes unseen. This runs `strata run PIPELINE --out OUT` with the trace on, reads
the process's VmRSS every 0.2 s, stamps each trace line with its time, and
lists every stretch above the threshold with the step it was in (the next
trace line after its start).

Usage: benches/rss_phases.py STRATA PIPELINE OUT [THRESHOLD_GIB]   (default 8)
  benches/rss_phases.py ~/.cache/strata-target/release/strata \\
      /tmp/strata-bench/e2e-10000000/pipeline.toml /tmp/rss-out
Writes OUT.trace.log (the stamped trace) and OUT.rss (seconds, GiB) beside OUT.
Needs Linux (/proc); the standard library only.
"""
import os
import subprocess
import sys
import threading
import time


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    binary, pipeline, out = sys.argv[1:4]
    threshold = float(sys.argv[4]) if len(sys.argv) == 5 else 8.0
    env = dict(os.environ, STRATA_TRACE="1")
    t0 = time.time()
    p = subprocess.Popen(
        [binary, "run", pipeline, "--out", out, "--quiet"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    samples = []

    def sample():
        while p.poll() is None:
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS"):
                            samples.append((time.time() - t0, int(line.split()[1]) / 1048576))
            except OSError:
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    events = []
    with open(out.rstrip("/") + ".trace.log", "w") as log:
        for line in p.stderr:
            t = time.time() - t0
            log.write(f"{t:8.2f} {line}")
            if "trace: " in line:
                events.append((t, line.split("trace: ", 1)[1].strip()))
    p.wait()
    sampler.join()
    wall = time.time() - t0
    with open(out.rstrip("/") + ".rss", "w") as f:
        for t, r in samples:
            f.write(f"{t:.2f} {r:.3f}\n")
    if p.returncode != 0:
        sys.exit(f"strata exited with {p.returncode}: see {out.rstrip('/')}.trace.log")
    stretches, cur = [], None
    for t, r in samples:
        if r > threshold:
            cur = [t, t, r] if cur is None else [cur[0], t, max(cur[2], r)]
        elif cur:
            stretches.append(cur)
            cur = None
    if cur:
        stretches.append(cur)
    peak = max(samples, key=lambda s: s[1]) if samples else (0.0, 0.0)
    print(f"wall {wall:.1f} s, sampled peak {peak[1]:.2f} GiB at {peak[0]:.1f} s")
    print(f"above {threshold:g} GiB:" if stretches else f"never above {threshold:g} GiB")
    for start, end, top in stretches:
        during = next((e for t, e in events if t >= start), "the end of the run")
        print(f"  {start:7.1f}-{end:7.1f} s ({end - start:5.1f} s) at most {top:.2f} GiB,"
              f" in the step of: {during[:90]}")


if __name__ == "__main__":
    main()
