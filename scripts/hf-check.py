#!/usr/bin/env python3
"""Loads nemo-convert's Hugging Face exports with transformers (+ compressed-tensors) and measures
perplexity under the fixtures' protocol (reference.json "perplexity_protocol"): the text tokenized
whole with the export's tokenizer.json, no special tokens; consecutive windows of CTX tokens, no
overlap, the trailing partial window dropped; every token but the first of each window scored;
ppl = exp(mean NLL); float32 math. Prints each beside nemo-convert's own `perplexity` of the same
export (passed in) and the relative difference.

Path per export: "transformers" when AutoModelForCausalLM.from_pretrained loads the export as it
is (compressed-tensors' own loader inside transformers) with no missing, unexpected or mismatched
weight. Otherwise "ct-decompress": every quantized module's weight is decompressed by the
compressed-tensors library's own compressor (BaseCompressor registry: PackedQuantizationCompressor,
FloatQuantizationCompressor), written with the export's other tensors as a dense float32
checkpoint, and loaded by transformers from that (again with nothing missing or unexpected).

usage: hf-check.py TEXT CTX NAME=DIR=OUR_PPL ...
"""
import json, math, os, sys, time, traceback

import torch


def windows(ids, ctx):
    n = len(ids) // ctx
    return torch.tensor(ids[: n * ctx], dtype=torch.long).view(n, ctx)


@torch.no_grad()
def perplexity(model, w, device, batch=8):
    nll, count = 0.0, 0
    for i in range(0, w.shape[0], batch):
        x = w[i : i + batch].to(device)
        logits = model(input_ids=x, use_cache=False).logits.float()
        lp = torch.log_softmax(logits[:, :-1], dim=-1)
        tgt = x[:, 1:]
        nll -= lp.gather(-1, tgt.unsqueeze(-1)).double().sum().item()
        count += tgt.numel()
    return math.exp(nll / count), count


def load_transformers(d, device):
    from transformers import AutoModelForCausalLM
    m, info = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, output_loading_info=True)
    # A weight transformers did not find is initialised at random: that is a failed load, not a model.
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")}
    if bad:
        raise RuntimeError("; ".join(f"{k}: {len(v)} e.g. {sorted(map(str, v))[:3]}" for k, v in bad.items()))
    return m.to(device).eval()


def load_decompressed(d, device):
    """Each quantized module's weight decompressed by compressed-tensors' own compressor (the
    BaseCompressor registry entry of its config group's format), written with the export's other
    tensors as a dense float32 checkpoint, and loaded by transformers from that."""
    import shutil, tempfile
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

    cfg = json.load(open(os.path.join(d, "config.json")))
    q = cfg.pop("quantization_config")
    sd = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".safetensors"):
            sd.update(load_file(os.path.join(d, f)))
    for g in q["config_groups"].values():
        scheme = QuantizationScheme(targets=g["targets"], weights=QuantizationArgs(**g["weights"]),
                                    input_activations=QuantizationArgs(**g["input_activations"]) if g.get("input_activations") else None)
        comp = BaseCompressor.get_value_from_registry(g["format"])
        for m in g["targets"]:
            part = {k[len(m) + 1 :]: sd.pop(k) for k in list(sd) if k.startswith(m + ".")}
            out = comp.decompress(part, scheme)
            sd[m + ".weight"] = out["weight"]
    tmp = tempfile.mkdtemp()
    try:
        for f in os.listdir(d):
            if not f.endswith(".safetensors") and f not in ("config.json", "model.safetensors.index.json"):
                shutil.copy(os.path.join(d, f), tmp)
        json.dump(cfg, open(os.path.join(tmp, "config.json"), "w"))
        save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
                  os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        return load_transformers(tmp, device)
    finally:
        shutil.rmtree(tmp)


def main():
    text, ctx = sys.argv[1], int(sys.argv[2])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    import transformers, compressed_tensors
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, compressed-tensors {compressed_tensors.__version__}, device {device}")
    from tokenizers import Tokenizer
    rows = []
    for spec in sys.argv[3:]:
        name, d, ours = spec.split("=")
        ours = float(ours)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        ids = tok.encode(open(text, encoding="utf-8").read(), add_special_tokens=False).ids
        w = windows(ids, ctx)
        path = "transformers"
        t0 = time.time()
        try:
            model = load_transformers(d, device)
        except Exception as e:
            print(f"{name}: transformers could not load it ({type(e).__name__}: {str(e)[:300]}); decompressing with compressed-tensors")
            path = "ct-decompress"
            try:
                model = load_decompressed(d, device)
            except Exception:
                traceback.print_exc()
                rows.append((name, "failed", float("nan"), ours, float("nan"), 0))
                continue
        ppl, n = perplexity(model, w, device)
        rel = (ppl - ours) / ours * 100
        rows.append((name, path, ppl, ours, rel, n))
        print(f"{name}: path {path}, ppl {ppl:.4f} vs nemo-convert {ours:.4f} ({rel:+.4f}%), {n} tokens scored, {time.time() - t0:.1f} s", flush=True)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    print()
    print("| export | loaded by | transformers ppl | nemo-convert ppl | difference | tokens |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.4f} | {r[3]:.4f} | {r[4]:+.4f}% | {r[5]} |")
    bad = [r for r in rows if not (abs(r[4]) <= 0.05)]
    print("ALL WITHIN 0.05%" if not bad else f"OUTSIDE 0.05%: {[r[0] for r in bad]}")


if __name__ == "__main__":
    main()
