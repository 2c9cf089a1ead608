#!/usr/bin/env bash
# Call 2 (H200): vC = the commit (vB of call 1 with the batched-greedy test's prompt index
# fixed: call 1's run of that test stopped at its first line, an index past the prompt
# table). gpu_batch (all but the timing test), gpu_sample, gpu_persistent on vC (the
# single-row decode's captured argmax is the new kernel at one grid layer); serve 1, 2, 4, 8
# streams on 1.5B and 7B, order base vC vC base; then gpu_e2e's synthetic suite until the
# call's limit.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
export GRAPHRUN_BIN=/tmp/ab/vC/graphrun
timeout 300 /tmp/ab/vC/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_vC.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep "test result\|FAILED\|panicked\|batched greedy" $OUT/gpu_batch_vC.log | head -8
timeout 120 /tmp/ab/vC/gpu_sample --ignored --nocapture --test-threads 1 > $OUT/gpu_sample.log 2>&1
echo "gpu_sample: exit $? ($SECONDS s)"; grep "test result" $OUT/gpu_sample.log
timeout 150 /tmp/ab/vC/gpu_persistent --ignored --nocapture --test-threads 1 > $OUT/gpu_persistent.log 2>&1
echo "gpu_persistent: exit $? ($SECONDS s)"; grep "test result" $OUT/gpu_persistent.log
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 1.5b 7b; do serve_run base $p ${p}_basea; serve_run vC $p ${p}_vCa; serve_run vC $p ${p}_vCb; serve_run base $p ${p}_baseb; done
timeout 150 /tmp/ab/vC/gpu_e2e --ignored --nocapture --test-threads 1 synthetic > $OUT/gpu_e2e.log 2>&1
echo "gpu_e2e: exit $? ($SECONDS s)"; grep "test result" $OUT/gpu_e2e.log; grep -c "" $OUT/gpu_e2e.log
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
