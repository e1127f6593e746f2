#!/usr/bin/env python3
"""Compares two `sinkhorn train` runs: the training losses in their metrics.jsonl and the final
parameters of their exported checkpoints (`sinkhorn checkpoint export ... --out RUN/export.safetensors`).

  compare_runs.py BASE RUN [--bitwise] [--rtol 1e-5] [--steps A:B]

BASE is the reference run (one process), RUN the run under test; both folders hold metrics.jsonl
and export.safetensors. Checks, with a one-line verdict per failure and exit status 1:
  * the same tensor names and shapes;
  * every training-step loss of RUN (steps A..B if given) equals BASE's: bitwise with --bitwise,
    else within rtol relative;
  * parameters: bitwise with --bitwise, else the relative L2 distance over all parameters,
    ||run - base|| / ||base||, within rtol. BatchNorm running statistics (running_mean / running_var /
    num_batches_tracked) are not parameters: with data parallelism they are averaged over replicas
    at evaluation and checkpoint time, so they legitimately differ from a single process.
Prints the measured figures either way.
"""
import argparse
import json
import sys

import numpy as np

from safetensors_np import load


def losses(run):
    out = {}
    with open(f"{run}/metrics.jsonl") as f:
        for line in f:
            r = json.loads(line)
            if "loss" in r:
                out[r["step"]] = r["loss"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("run")
    ap.add_argument("--bitwise", action="store_true")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--steps", default=None, help="A:B, the steps of RUN to compare (inclusive)")
    a = ap.parse_args()
    bad = []
    lb, lr = losses(a.base), losses(a.run)
    steps = sorted(lr)
    if a.steps:
        lo, hi = (int(x) for x in a.steps.split(":"))
        steps = [s for s in steps if lo <= s <= hi]
        if steps != list(range(lo, hi + 1)):
            bad.append(f"{a.run}: metrics.jsonl has steps {steps}, expected {lo}..{hi}")
    worst_loss = 0.0
    for s in steps:
        if s not in lb:
            bad.append(f"{a.base}: no loss for step {s}")
            continue
        d = abs(lr[s] - lb[s])
        worst_loss = max(worst_loss, d / abs(lb[s]))
        if (a.bitwise and lr[s] != lb[s]) or (not a.bitwise and d > a.rtol * abs(lb[s])):
            bad.append(f"step {s}: loss {lr[s]!r} vs {lb[s]!r} (relative {d / abs(lb[s]):.3g})")
    tb, tr = load(f"{a.base}/export.safetensors"), load(f"{a.run}/export.safetensors")
    if set(tb) != set(tr):
        bad.append(f"tensor names differ: {sorted(set(tb) ^ set(tr))[:5]}")
    num = den = 0.0
    worst_elem = 0.0
    unequal = 0
    for k in sorted(set(tb) & set(tr)):
        x, y = tb[k], tr[k]
        if x.shape != y.shape:
            bad.append(f"{k}: shape {y.shape} vs {x.shape}")
            continue
        stat = "running_" in k or "num_batches_tracked" in k
        if not stat and not np.array_equal(x, y):
            unequal += 1
        if stat or x.dtype != np.float32:
            continue
        d = y.astype(np.float64) - x.astype(np.float64)
        num += float(np.sum(d * d))
        den += float(np.sum(x.astype(np.float64) ** 2))
        worst_elem = max(worst_elem, float(np.max(np.abs(d))) if d.size else 0.0)
    rel = (num / den) ** 0.5 if den > 0 else num ** 0.5
    if a.bitwise and unequal:
        bad.append(f"{unequal} parameter tensor(s) not bitwise equal (relative L2 {rel:.3g})")
    if not a.bitwise and rel > a.rtol:
        bad.append(f"parameters: relative L2 distance {rel:.3g} > {a.rtol}")
    print(f"{a.run} vs {a.base}: {len(steps)} steps, worst loss relative diff {worst_loss:.3g}, "
          f"parameters relative L2 {rel:.3g}, worst element |diff| {worst_elem:.3g}"
          + (", bitwise equal" if unequal == 0 and worst_loss == 0 else ""))
    for b in bad:
        print("FAIL:", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
