#!/usr/bin/env bash
# Call 2 (H200): v23 = the commit (v20's whole-row matvec, CTA-major tasks as before; v22's
# batched attention looping over splits), against v22 (call 1's): gpu_batch on v23; serve
# 1 and 8 streams on 7B and 1.5B, v22 v23 v23 v22.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
A=v22; B=v23
GRAPHRUN_BIN=/tmp/ab/$B/graphrun timeout 200 /tmp/ab/$B/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_$B.log 2>&1
rc=$?; echo "gpu_batch $B: exit $rc ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ\|compared" $OUT/gpu_batch_$B.log | head -12
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/$A/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 60 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do serve_run $A $p ${p}_${A}a; serve_run $B $p ${p}_${B}a; serve_run $B $p ${p}_${B}b; serve_run $A $p ${p}_${A}b; done
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
