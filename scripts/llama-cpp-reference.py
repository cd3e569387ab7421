#!/usr/bin/env python3
"""Runs llama.cpp's own converter (convert_hf_to_gguf.py) on a checkpoint, for the expected
metadata our GGUF writer is tested against (Tests/FormatsTests/GGUFData/README.md).

llama.cpp does not recognise the fixtures' pre-tokenizer: it identifies pre-tokenizers by a hash
of how a fixed text tokenizes, and the fixtures' tokenizer is not in its list, although its split
regex is exactly the one llama.cpp calls `tekken`. This wrapper names it the way our writer does —
from the regex — and changes nothing else.

usage: llama-cpp-reference.py LLAMA_CPP_DIR MODEL_DIR OUT.gguf OUTTYPE
"""
import json
import sys
from pathlib import Path

llama, model, out, outtype = sys.argv[1:5]
sys.path.insert(0, llama)
sys.path.insert(0, str(Path(llama) / "gguf-py"))

TEKKEN = ("[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
          "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
          "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")

import convert_hf_to_gguf  # noqa: E402
from conversion import base  # noqa: E402

original = base.TextModel.get_vocab_base_pre


def by_regex(self, tokenizer):
    tj = json.loads((Path(model) / "tokenizer.json").read_text())
    pres = tj.get("pre_tokenizer") or {}
    for p in pres.get("pretokenizers", [pres]):
        if p.get("type") == "Split" and p.get("pattern", {}).get("Regex") == TEKKEN:
            return "tekken"
    return original(self, tokenizer)


base.TextModel.get_vocab_base_pre = by_regex
sys.argv = ["convert_hf_to_gguf.py", model, "--outtype", outtype, "--outfile", out]
convert_hf_to_gguf.main()
