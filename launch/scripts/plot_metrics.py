#!/usr/bin/python3
"""Draws a run's curves from RUN_DIR/metrics.jsonl (README "[log]"): training and validation loss
against step and against tokens seen, the learning rate, and tokens/s.

    python3 launch/scripts/plot_metrics.py RUN_DIR [--out curves.png] [--title TEXT]

RUN_DIR is a folder with metrics.jsonl (a run's log.dir) or the file itself. The picture goes to
--out (default RUN_DIR/curves.png); the path is printed. Needs matplotlib (Debian
python3-matplotlib, installed by launch/scripts/setup.sh). Records: one JSON object per line —
progress {step, loss, lr, grad_norm, tokens_per_s, ..., tokens_seen}, evaluations {step,
val_loss[, val_bpb]}, samples {step, sample} (ignored here). A validation point's tokens are
interpolated from the progress records around its step. Lines that are not JSON objects are an
error naming the file and line.
"""
import argparse
import json
import os
import sys


def load(path):
    train, val = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit("plot_metrics: error: %s:%d: not JSON (%s)" % (path, n, e.msg))
            if not isinstance(r, dict) or "step" not in r:
                sys.exit("plot_metrics: error: %s:%d: expected a JSON object with a step" % (path, n))
            if "loss" in r:
                train.append(r)
            if "val_loss" in r:
                val.append(r)
    if not train and not val:
        sys.exit("plot_metrics: error: %s: no loss or val_loss records" % path)
    return train, val


def tokens_at(step, train):
    """Tokens seen at `step`, interpolated between progress records (None without tokens_seen)."""
    pts = [(r["step"], r["tokens_seen"]) for r in train if "tokens_seen" in r]
    if not pts:
        return None
    if step <= pts[0][0]:
        return pts[0][1] * step / pts[0][0] if pts[0][0] else pts[0][1]
    for (s0, t0), (s1, t1) in zip(pts, pts[1:]):
        if s0 <= step <= s1:
            return t0 + (t1 - t0) * (step - s0) / (s1 - s0) if s1 != s0 else t1
    s, t = pts[-1]
    return t * step / s if s else t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--out")
    ap.add_argument("--title")
    a = ap.parse_args()
    path = a.run_dir if os.path.isfile(a.run_dir) else os.path.join(a.run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        sys.exit("plot_metrics: error: %s: no such file (a run's log.dir holds metrics.jsonl)" % path)
    out = a.out or os.path.join(os.path.dirname(os.path.abspath(path)), "curves.png")
    train, val = load(path)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    steps = [r["step"] for r in train]
    vsteps = [r["step"] for r in val]
    vloss = [r["val_loss"] for r in val]
    for k, (xs, vx, label) in enumerate([(steps, vsteps, "step"),
                                         ([r.get("tokens_seen") for r in train],
                                          [tokens_at(s, train) for s in vsteps], "tokens seen")]):
        p = ax[0][k]
        if train and all(x is not None for x in xs):
            p.plot(xs, [r["loss"] for r in train], label="train loss")
        if val and all(x is not None for x in vx):
            p.plot(vx, vloss, "o-", label="val loss")
        p.set_xlabel(label)
        if k == 1:
            p.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        p.set_ylabel("loss (nats / token)")
        p.grid(alpha=0.3)
        p.legend()
    p = ax[1][0]
    p.plot(steps, [r.get("lr", float("nan")) for r in train])
    p.set_xlabel("step")
    p.set_ylabel("learning rate")
    p.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    p.grid(alpha=0.3)
    p = ax[1][1]
    p.plot(steps, [r.get("tokens_per_s", float("nan")) for r in train])
    p.set_xlabel("step")
    p.set_ylabel("tokens / s")
    p.grid(alpha=0.3)
    fig.suptitle(a.title or os.path.basename(os.path.dirname(os.path.abspath(path))))
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(out)


main()
