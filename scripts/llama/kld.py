#!/usr/bin/env python3
"""nemo-convert's evaluation windows for llama.cpp, and the numbers `verify` reports, computed from
logits llama.cpp produced (scripts/llama/llama-windows.c).

  kld.py tokens TOKENIZER.json TEXT CTX OUT.bin        windows as verify cuts them (no special
                                                       tokens, CTX tokens each, no overlap, the
                                                       trailing partial window dropped)
  kld.py compare TOKENS.bin CTX BASE.bin CAND.bin      KL(base ‖ cand) per scored token (every
                                                       token but a window's first), its mean,
                                                       median, p99; top-1 agreement; both ppls
Prints one JSON object.
"""
import json
import sys

import numpy as np


def tokens(tokenizer, text, ctx, out):
    from tokenizers import Tokenizer
    ids = Tokenizer.from_file(tokenizer).encode(open(text, encoding="utf-8").read(), add_special_tokens=False).ids
    n = len(ids) // ctx * ctx
    np.asarray(ids[:n], dtype="<i4").tofile(out)
    print(json.dumps({"tokens": len(ids), "windows": n // ctx, "ctx": ctx}))


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def compare(tok_path, ctx, base_path, cand_path):
    tok = np.fromfile(tok_path, dtype="<i4")
    windows = len(tok) // ctx
    base = np.memmap(base_path, dtype="<f4", mode="r")
    cand = np.memmap(cand_path, dtype="<f4", mode="r")
    vocab = base.size // (windows * ctx)
    assert base.size == cand.size == windows * ctx * vocab, "logit files do not match the windows"
    base = base.reshape(windows, ctx, vocab)
    cand = cand.reshape(windows, ctx, vocab)
    klds, same, nll_b, nll_c = [], 0, 0.0, 0.0
    for w in range(windows):
        lb = log_softmax(base[w, :-1])
        lc = log_softmax(cand[w, :-1])
        target = tok[w * ctx + 1:(w + 1) * ctx]
        klds.append((np.exp(lb) * (lb - lc)).sum(axis=-1))
        same += int((lb.argmax(-1) == lc.argmax(-1)).sum())
        rows = np.arange(ctx - 1)
        nll_b -= lb[rows, target].sum()
        nll_c -= lc[rows, target].sum()
    k = np.concatenate(klds)
    n = k.size
    print(json.dumps({
        "windows": windows, "scored": n,
        "ppl_base": float(np.exp(nll_b / n)), "ppl": float(np.exp(nll_c / n)),
        "kld_mean": float(k.mean()), "kld_median": float(np.median(k)),
        "kld_p99": float(np.percentile(k, 99)), "kld_max": float(k.max()),
        "top1": same / n,
    }))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "tokens":
        tokens(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif cmd == "compare":
        compare(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        sys.exit(__doc__)
