#!/usr/bin/env bash
# Call 2 (H200): v17 (fixed: the join launches without programmatic serialization) = a prompt of up to 8 tokens joins a batched engine as one batched step
# of a row a token (BatchEngine::prefill, src/exec/cuda/batch.rs), against v16 = 46efc79
# (its single-sequence prefill GEMM), same call: gpu_batch on v17 (all 4 tests); serve
# 1/2/4/8 streams (8-token prompts) v16 v17 v17 v16 on both presets: time to first token
# under load, and the decode rate (the window where all streams decode) as a control.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
A=v16; B=v17
GRAPHRUN_BIN=/tmp/ab/$B/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 260 /tmp/ab/$B/gpu_batch --ignored --nocapture --test-threads 1 > $OUT/gpu_batch_$B.log 2>&1
rc=$?; echo "gpu_batch $B: exit $rc ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ\|one-step join\|step [0-9.]* ms" $OUT/gpu_batch_$B.log | head -40
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/$A/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 100 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ttft8 $(grep '"streams": 8, "tokens' $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(max(json.loads(l)["ttft_s"])) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do serve_run $A $p ${p}_${A}a; serve_run $B $p ${p}_${B}a; serve_run $B $p ${p}_${B}b; serve_run $A $p ${p}_${A}b; done
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
