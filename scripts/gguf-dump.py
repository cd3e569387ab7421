#!/usr/bin/env python3
"""Dumps a GGUF file's metadata and tensor table as JSON with gguf-py (the reader maintained with
llama.cpp): every key with its value type and value (tokenizer arrays summarised by length and a
SHA-256 of their JSON), every tensor's name, ggml type and dims (ne order).

usage: gguf-dump.py FILE.gguf [--values]  (--values adds a SHA-256 of each tensor's dequantized float32 values)
"""
import hashlib
import json
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.quants import dequantize

path = sys.argv[1]
r = GGUFReader(path)
meta = {}
for k, f in r.fields.items():
    if k.startswith("GGUF."):
        continue
    t = f.types[0]
    v = f.contents()
    entry = {"type": t.name}
    if t == GGUFValueType.ARRAY:
        entry["element_type"] = f.types[-1].name
        if len(v) > 64:
            entry["count"] = len(v)
            entry["sha256"] = hashlib.sha256(json.dumps(v, ensure_ascii=False).encode()).hexdigest()
            v = None
    if t == GGUFValueType.FLOAT32:
        v = float(np.float32(v))
    if v is not None:
        entry["value"] = v
    meta[k] = entry
tensors = []
for t in r.tensors:
    e = {"name": t.name, "type": t.tensor_type.name, "dims": [int(x) for x in t.shape]}
    if "--values" in sys.argv:
        vals = dequantize(t.data, t.tensor_type).astype(np.float32)
        e["values_sha256"] = hashlib.sha256(np.ascontiguousarray(vals).tobytes()).hexdigest()
    tensors.append(e)
print(json.dumps({"metadata": meta, "tensors": tensors}, indent=1, sort_keys=True, ensure_ascii=False))
