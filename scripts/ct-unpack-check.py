#!/usr/bin/env python3
"""Cross-check of a compressed-tensors export (HFExportTests): unpacks every `weight_packed`
with numpy by compressed-tensors' own rule (`unpack_from_int32`: element j of a row at bits b*j of
its little-endian int32 words, minus 2**(b-1); asymmetric zero points packed the same way along
the output dimension), reads bits, group size and symmetry from config.json's config group that
targets the module, and compares (code - zero) * scale in float32, bit for bit, with the values
nemo-convert's codec decodes (WANT.safetensors, one F32 tensor per weight).

usage: ct-unpack-check.py EXPORT_DIR WANT.safetensors
"""
import json, os, sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def unpack(words, bits, count):
    """[rows, w] int32 -> [rows, count] signed codes (compressed-tensors' unpack_from_int32)."""
    u = words.astype("<i4").view(np.uint32)
    per = 32 // bits
    shifts = (np.arange(per, dtype=np.uint32) * bits)
    vals = (u[..., None] >> shifts) & ((1 << bits) - 1)
    vals = vals.reshape(u.shape[0], -1)[:, :count].astype(np.int32)
    return vals - (1 << (bits - 1))


def main():
    d, want_path = sys.argv[1], sys.argv[2]
    q = json.load(open(os.path.join(d, "config.json")))["quantization_config"]
    by_module = {}
    for g in q["config_groups"].values():
        for t in g["targets"]:
            by_module[t] = g["weights"]
    st = {}
    for f in os.listdir(d):
        if f.endswith(".safetensors"):
            # Only the quantization tensors: numpy has no bfloat16 for the high-precision ones.
            with safe_open(os.path.join(d, f), "np") as h:
                for k in h.keys():
                    if k.endswith((".weight_packed", ".weight_scale", ".weight_shape", ".weight_zero_point")):
                        st[k] = h.get_tensor(k)
    want = load_file(want_path)
    checked = 0
    for name, w in want.items():
        m = name[: -len(".weight")]
        if m + ".weight_packed" not in st:
            continue
        a = by_module[m]
        bits, sym = a["num_bits"], a["symmetric"]
        rows, cols = (int(x) for x in st[m + ".weight_shape"])
        assert (rows, cols) == w.shape, (name, rows, cols, w.shape)
        codes = unpack(st[m + ".weight_packed"], bits, cols)
        scale = st[m + ".weight_scale"].astype(np.float32)
        group = cols if a["strategy"] == "channel" else a["group_size"]
        gidx = np.arange(cols) // group
        if sym:
            zero = np.zeros((rows, scale.shape[1]), np.int32)
        else:
            zero = unpack(st[m + ".weight_zero_point"].T.copy(), bits, rows).T
        got = (codes - zero[:, gidx]).astype(np.float32) * scale[:, gidx]
        if not np.array_equal(got.view(np.uint32), w.view(np.uint32)):
            bad = np.argwhere(got.view(np.uint32) != w.view(np.uint32))[0]
            print(f"{name}: differs at {tuple(bad)}: {got[tuple(bad)]} vs {w[tuple(bad)]}")
            sys.exit(1)
        checked += 1
    if checked == 0:
        print("no packed tensors found")
        sys.exit(1)
    print(f"{checked} packed tensors equal")


if __name__ == "__main__":
    main()
