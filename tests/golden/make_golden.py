#!/usr/bin/env python3
"""Golden dequantization vectors from an independent implementation (gguf-py).

Writes tests/golden/dequant_golden.json with two kinds of cases:

* "model" cases: a few rows of every tensor type present in the real models
  (Qwen2.5-Coder 0.5B and 1.5B Q4_K_M). Each case names the model file, the tensor
  and the row, and stores the row's raw bytes (so the Rust test also checks that its
  GGUF reader finds the same bytes) and gguf-py's dequantized f32 values.
* "synthetic" cases for the other block types: blocks made by gguf-py's quantizers
  where it has one (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, BF16) and random bytes with finite
  fp16 scales where it only dequantizes (Q2_K, Q3_K, Q5_K), plus F16.

Values are stored as hex of little-endian f32 bytes so the comparison is bit-exact.

Usage: python3 tests/golden/make_golden.py [MODELS_DIR]
Requires: pip install gguf==0.19.0 numpy
"""
import json
import os
import sys

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

MODELS = {
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf": 2,
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf": 1,
}


def hexf(values):
    return np.asarray(values, dtype="<f4").tobytes().hex()


def model_cases(models_dir):
    cases = []
    for fname, per_type in MODELS.items():
        path = os.path.join(models_dir, fname)
        r = GGUFReader(path)
        taken = {}
        for t in r.tensors:
            tname = t.tensor_type.name
            if taken.get(tname, 0) >= per_type:
                continue
            taken[tname] = taken.get(tname, 0) + 1
            ne0 = int(t.shape[0])
            nrows = int(np.prod(t.shape[1:])) if len(t.shape) > 1 else 1
            row = (nrows // 2) if nrows > 1 else 0
            data = np.asarray(t.data)
            raw = data.reshape(nrows, -1)[row] if nrows > 1 else data.reshape(-1)
            raw = np.ascontiguousarray(raw).view(np.uint8)
            vals = dequantize(raw, t.tensor_type).reshape(-1)
            assert vals.size == ne0, (t.name, vals.size, ne0)
            cases.append({
                "kind": "model", "model": fname, "tensor": t.name, "type": tname,
                "row": row, "n": ne0, "raw_hex": raw.tobytes().hex(), "values_hex": hexf(vals),
            })
    return cases


def synthetic_cases(seed=1234):
    rng = np.random.default_rng(seed)
    cases = []
    x = (rng.standard_normal(512) * 0.05).astype(np.float32)
    x[7] = 0.31  # an outlier so scales differ between blocks
    for qt in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.BF16, T.F16):
        raw = quantize(x.reshape(1, -1), qt).reshape(-1).view(np.uint8)
        vals = dequantize(raw, qt).reshape(-1)
        cases.append({"kind": "synthetic", "type": qt.name, "n": int(vals.size),
                      "raw_hex": raw.tobytes().hex(), "values_hex": hexf(vals)})
    # Types gguf-py can only dequantize: random bytes, fp16 scale fields set to sane values.
    layouts = {  # type: (bytes per block, offsets of fp16 scale fields)
        T.Q2_K: (84, (80, 82)),
        T.Q3_K: (110, (108,)),
        T.Q5_K: (176, (0, 2)),
        T.Q4_K: (144, (0, 2)),
        T.Q6_K: (210, (208,)),
    }
    for qt, (bs, fp16_at) in layouts.items():
        blocks = rng.integers(0, 256, size=(2, bs), dtype=np.uint8)
        for b in range(2):
            for off in fp16_at:
                blocks[b, off:off + 2] = np.array([rng.uniform(-0.02, 0.02)], dtype="<f2").view(np.uint8)
        raw = blocks.reshape(-1)
        vals = dequantize(raw, qt).reshape(-1)
        cases.append({"kind": "synthetic", "type": qt.name, "n": int(vals.size),
                      "raw_hex": raw.tobytes().hex(), "values_hex": hexf(vals)})
    return cases


def main():
    models_dir = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "GRAPHRUN_MODELS", os.path.expanduser("~/.cache/graphrun/models"))
    out = {"generator": "gguf-py " + __import__("importlib.metadata").metadata.version("gguf"),
           "cases": model_cases(models_dir) + synthetic_cases()}
    dst = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dequant_golden.json")
    with open(dst, "w") as f:
        json.dump(out, f, indent=1)
    kinds = {}
    for c in out["cases"]:
        kinds.setdefault(c["kind"], set()).add(c["type"])
    print(f"wrote {dst}: {len(out['cases'])} cases; " +
          "; ".join(f"{k}: {sorted(v)}" for k, v in kinds.items()))


if __name__ == "__main__":
    main()
