#!/usr/bin/env bash
# Call 4 (H200): the review mend — the decode matvecs' weight-row L2 prefetch written once
# (l2_prefetch_rows, kernels/matvec.cuh) where the single-row matvec and both batched
# matvecs wrote it out. The single-row and whole-row kernels' machine code is unchanged; the
# CTA-tile batched kernels' is not (the same prefetches, scheduled differently), so: gpu_batch
# on the mend (all but the timing test), and serve 1, 2, 4, 8 streams on 1.5B and 7B, order
# vC mend mend vC (vC = df1b207's measured build).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
GRAPHRUN_BIN=/tmp/ab/mend/graphrun timeout 200 /tmp/ab/mend/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_mend.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep "test result\|FAILED\|panicked" $OUT/gpu_batch_mend.log | head -5
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/vC/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 1.5b 7b; do serve_run vC $p ${p}_vCa; serve_run mend $p ${p}_menda; serve_run mend $p ${p}_mendb; serve_run vC $p ${p}_vCb; done
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
