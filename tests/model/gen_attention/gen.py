#!/usr/bin/env python3
"""Generates tests/data/attention/*.safetensors: one attention layer of the PyTorch reference
(`sinkhorn_transformer` 0.11.4 + `local-attention` 1.4.3, installed with pip) per case, run in
float64, with its inputs, weights, output and every gradient.

Usage:  /usr/bin/python3 tests/model/gen_attention/gen.py [OUT_DIR]   (default tests/data/attention)

The script imports the pip packages; it contains none of their code. The two reference defects the
project corrects (model-spec §20) are corrected here by patching the installed functions in memory:
  D1  non-causal SinkhornAttention.forward: the selected values are reordered from the values
      (the reference reshapes the reordered keys into the values);
  D2  SinkhornCausalAttention.forward: n_top null buckets are prepended to the key mask (the
      reference prepends 2).
The patch takes the installed method's source text, replaces the one defective expression and
re-compiles it in the module's namespace; an assertion fails if the expression is not found.

Each file holds
  x [B, T, D], dy [B, T, D] (the upstream gradient: loss = sum(out * dy)), input_mask u8 [B, T]
  (when used), context [B, Tc, D] and context_mask u8 [B, Tc] (context layers), the layer's
  parameters under their state_dict names, out [B, T, D], grad.x, grad.<parameter>, grad.context;
and the layer configuration as JSON in the metadata entry "config".

Decision margins: every top-k decision (softmax(X/tau) largest vs second largest, relative) must be
>= 1e-3, and every sort-net activation input must be >= 1e-3·max away from the kink at 0, so
float32 recomputation makes the same discrete choices; otherwise the case is re-drawn with the
next seed. Exact ties between null columns (identical null buckets) are harmless and allowed.
"""
import inspect
import json
import os
import struct
import sys
import textwrap

import numpy as np
import torch
import torch.nn.functional as F

import sinkhorn_transformer.sinkhorn_transformer as st

torch.set_default_dtype(torch.float64)

# ---------------------------------------------------------------------------------------------
# In-memory corrections of D1 and D2.


def _patch_method(cls, name, old, new):
    src = textwrap.dedent(inspect.getsource(getattr(cls, name)))
    assert src.count(old) == 1, f"{cls.__name__}.{name}: expression to patch not found exactly once: {old!r}"
    src = src.replace(old, new)
    ns = {}
    exec(compile(src, f"<patched {cls.__name__}.{name}>", "exec"), st.__dict__, ns)
    setattr(cls, name, ns[name])


_patch_method(st.SinkhornAttention, "forward", "b_v_r = b_k_r.reshape(bh, buckets, -1, d_h)",
              "b_v_r = b_v_r.reshape(bh, buckets, -1, d_h)")                       # D1
_patch_method(st.SinkhornCausalAttention, "forward", "F.pad(mk, (0, 0, 2, 0), value=True)",
              "F.pad(mk, (0, 0, n_top, 0), value=True)")                            # D2

# ---------------------------------------------------------------------------------------------
# Decision-margin bookkeeping: wrap differentiable_topk (module global, looked up at call time).

_margins = []          # relative margins of every top-k decision
_kinks = []            # relative distance of activation inputs from 0
_null_cols = [0]       # causal: number of null columns (exact ties among them are harmless)
_orig_topk = st.differentiable_topk


def _checked_topk(x, k, temperature=1.):
    y = x.detach().clone()
    for i in range(k):
        p = (y / temperature).softmax(dim=-1)
        top2 = p.topk(2, dim=-1) if p.shape[-1] >= 2 else None
        if top2 is not None:
            v, ix = top2
            rel = (v[..., 0] - v[..., 1]) / v[..., 0]
            tie_null = (ix[..., 0] < _null_cols[0]) & (ix[..., 1] < _null_cols[0]) & (v[..., 0] == v[..., 1])
            rel = torch.where(tie_null, torch.ones_like(rel), rel)
            _margins.append(rel.min().item())
        if i < k - 1:
            y.scatter_(-1, p.topk(1, dim=-1)[1], float('-inf'))
    return _orig_topk(x, k, temperature)


st.differentiable_topk = _checked_topk


def _kink_hook(module, inputs, output):
    z = inputs[0].detach()
    _kinks.append((z.abs().min() / z.abs().max()).item())


# ---------------------------------------------------------------------------------------------
# Minimal safetensors writer.

_ST_DTYPES = {np.dtype("<f4"): "F32", np.dtype("<i8"): "I64", np.dtype("u1"): "U8"}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, off = [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        b = a.tobytes()
        header[name] = {"dtype": _ST_DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------------------------
# Cases. Keys are the C++ AttentionConfig fields (+ B, T, Tc, masks); null = reference default.

CASES = [
    dict(name="nc_attn_mask", dim=16, heads=2, bucket_size=4, T=16, n_top_buckets=2, mask="both"),
    dict(name="nc_sortcut_mask", dim=16, heads=2, bucket_size=4, T=16, n_sortcut=2, n_top_buckets=2, mask="both"),
    dict(name="nc_kvbucket_dimhead_mask", dim=12, heads=2, dim_head=8, bucket_size=4, kv_bucket_size=8, T=32,
         n_top_buckets=2, mask="both"),
    dict(name="nc_local_mask", dim=24, heads=3, n_local_attn_heads=1, bucket_size=4, T=16, n_top_buckets=1,
         mask="both"),
    dict(name="nc_nomask_dimhead", dim=8, heads=2, dim_head=6, bucket_size=4, T=16, n_top_buckets=2, mask=None),
    dict(name="nc_simple_top1_mask", dim=8, heads=2, bucket_size=4, T=16, max_seq_len=16, use_simple_sort_net=True,
         n_top_buckets=1, mask="both"),
    dict(name="causal_attn_top1_local_mask", dim=12, heads=3, n_local_attn_heads=1, bucket_size=4, T=16, causal=True,
         n_top_buckets=1, mask="both"),
    dict(name="causal_attn_top2_mask", dim=12, heads=3, bucket_size=4, T=20, causal=True, n_top_buckets=2,
         mask="both"),
    dict(name="causal_simple_mask", dim=8, heads=2, bucket_size=4, T=16, max_seq_len=24, causal=True,
         use_simple_sort_net=True, n_top_buckets=2, mask="both"),
    dict(name="causal_hs1_nomask", dim=8, heads=2, n_local_attn_heads=1, bucket_size=4, T=12, causal=True,
         n_top_buckets=2, mask=None),
    dict(name="causal_local_only_mask", dim=8, heads=2, n_local_attn_heads=2, bucket_size=4, T=12, causal=True,
         n_top_buckets=2, mask="both"),
    dict(name="context_mask", dim=8, heads=2, bucket_size=4, kv_bucket_size=4, T=16, Tc=16, is_context=True,
         n_top_buckets=2, mask="both"),
    dict(name="context_sortcut_mask", dim=8, heads=2, bucket_size=4, kv_bucket_size=8, T=16, Tc=24, is_context=True,
         n_sortcut=2, n_top_buckets=2, mask="both"),
]

DEFAULTS = dict(dim_head=None, kv_bucket_size=None, max_seq_len=None, causal=False, n_sortcut=0, temperature=0.75,
                n_local_attn_heads=0, use_simple_sort_net=False, n_top_buckets=2, is_context=False, Tc=None, B=2)


def make_mask(B, T, kind, g):
    m = torch.ones(B, T, dtype=torch.bool)
    if kind == "both":
        m[0, :3] = False    # padding at the start
        m[0, -2:] = False   # and at the end
        m[1, -5:] = False
    return m


def build(cfg):
    kw = dict(heads=cfg["heads"], dim_head=cfg["dim_head"], kv_bucket_size=cfg["kv_bucket_size"],
              non_permutative=True, sinkhorn_iter=5, n_sortcut=cfg["n_sortcut"], temperature=cfg["temperature"],
              attn_dropout=0., dropout=0., n_top_buckets=cfg["n_top_buckets"])
    if cfg["is_context"]:
        kw.update(context_only=True)
    else:
        kw.update(causal=cfg["causal"], use_simple_sort_net=cfg["use_simple_sort_net"],
                  n_local_attn_heads=cfg["n_local_attn_heads"])
    if cfg["causal"]:
        kw["kv_bucket_size"] = None
    max_seq_len = cfg["max_seq_len"] or cfg["T"]
    return st.SinkhornSelfAttention(cfg["dim"], cfg["bucket_size"], max_seq_len, **kw)


def run_case(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    m = build(cfg).eval()
    with torch.no_grad():
        m.to_q.weight.mul_(2.0)
        if m.to_kv is not None:
            m.to_kv.weight.mul_(2.0)
    sa = m.sinkhorn_attention
    hooks = []
    if hasattr(sa, "sort_net") and hasattr(sa.sort_net, "act"):
        hooks.append(sa.sort_net.act.register_forward_hook(_kink_hook))
    B, T, D = cfg["B"], cfg["T"], cfg["dim"]
    x = torch.randn(B, T, D, generator=g, requires_grad=True)
    dy = torch.randn(B, T, D, generator=g)
    kwargs, tensors = {}, {}
    mask = make_mask(B, T, cfg["mask"], g) if cfg["mask"] else None
    if mask is not None:
        kwargs["input_mask"] = mask
        tensors["input_mask"] = mask.numpy().astype(np.uint8)
    ctx = None
    if cfg["is_context"]:
        Tc = cfg["Tc"]
        ctx = torch.randn(B, Tc, D, generator=g, requires_grad=True)
        kwargs["context"] = ctx
        if mask is not None:
            cmask = torch.ones(B, Tc, dtype=torch.bool)
            cmask[0, :2] = False
            cmask[1, -3:] = False
            kwargs["context_mask"] = cmask
            tensors["context_mask"] = cmask.numpy().astype(np.uint8)
    _margins.clear()
    _kinks.clear()
    n_top = min(cfg["n_top_buckets"], T // cfg["bucket_size"])
    _null_cols[0] = n_top if cfg["causal"] else 0
    out = m(x, **kwargs)
    (out * dy).sum().backward()
    for h in hooks:
        h.remove()
    margin = min(_margins) if _margins else 1.0
    kink = min(_kinks) if _kinks else 1.0
    tensors["x"] = x.detach().numpy().astype(np.float32)
    tensors["dy"] = dy.numpy().astype(np.float32)
    tensors["out"] = out.detach().numpy().astype(np.float32)
    tensors["grad.x"] = x.grad.numpy().astype(np.float32)
    if ctx is not None:
        tensors["context"] = ctx.detach().numpy().astype(np.float32)
        tensors["grad.context"] = ctx.grad.numpy().astype(np.float32)
    for name, p in m.named_parameters():
        tensors[name] = p.detach().numpy().astype(np.float32)
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        tensors["grad." + name] = grad.numpy().astype(np.float32)
    return tensors, margin, kink


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "data",
                                                                 "attention")
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    for case in CASES:
        cfg = dict(DEFAULTS)
        cfg.update(case)
        for seed in range(1000, 1100):
            tensors, margin, kink = run_case(cfg, seed)
            if margin >= 1e-3 and kink >= 1e-3:
                break
        else:
            raise SystemExit(f"{cfg['name']}: no seed with decision margins >= 1e-3")
        meta_cfg = {k: v for k, v in cfg.items() if k != "name"}
        meta = {"config": json.dumps(meta_cfg, sort_keys=True), "seed": str(seed), "min_topk_margin": f"{margin:.3e}",
                "min_kink_distance": f"{kink:.3e}",
                "generator": "tests/model/gen_attention/gen.py (sinkhorn_transformer 0.11.4, local-attention 1.4.3, "
                             "D1 and D2 corrected, float64)"}
        path = os.path.join(out_dir, cfg["name"] + ".safetensors")
        write_safetensors(path, tensors, meta)
        size = os.path.getsize(path)
        total += size
        print(f"{cfg['name']:32s} seed {seed}  margin {margin:.2e}  kink {kink:.2e}  {size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
