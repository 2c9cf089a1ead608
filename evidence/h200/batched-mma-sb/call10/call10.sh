#!/usr/bin/env bash
# Call 10 (H200): v13 = v12q (call 9) + the experiment switch GRAPHRUN_MMA_MIN_ROWS_OTHER
# (the least rows of the tensor-core kernel for the plain and residual matvecs; SwiGLU's is
# GRAPHRUN_MMA_MIN_ROWS; both default 4). Part 1, serve 1, 2, 4, 6, 8 streams (7B, 1.5B;
# base v13 v13-other-from-5 v13-other-from-5 v13 base; base = 4dd1490, main). Part 2, the
# GPU suites on v13 side by side (synthetic models; the real 0.5B is not on the device):
# backend_ops, gpu_persistent, gpu_batch (default rule, and with the other epilogues on
# tensor cores from 5 rows), gpu_sample, gpu_live_diff (its synthetic tests), gpu_e2e's
# synthetic suite split over processes.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
echo "synth done ($SECONDS s)"
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,6,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do
  serve_run base $p ${p}_base1; serve_run v13 $p ${p}_v131
  GRAPHRUN_MMA_MIN_ROWS_OTHER=5 serve_run v13 $p ${p}_v13o51; GRAPHRUN_MMA_MIN_ROWS_OTHER=5 serve_run v13 $p ${p}_v13o52
  serve_run v13 $p ${p}_v132; serve_run base $p ${p}_base2
done
echo "part 2 ($SECONDS s)"
S=/tmp/ab/v13; export GRAPHRUN_BIN=$S/graphrun GRAPHRUN_REFERENCE=$PWD/tests/reference
suite() {  # tag, command...
  local tag=$1; shift
  timeout 400 "$@" > $OUT/$tag.log 2>&1
  echo "$tag: exit $? ($SECONDS s) $(grep 'test result' $OUT/$tag.log | tr '\n' ' ')"
}
e2e() {  # tag, presets, lengths
  GRAPHRUN_E2E_PRESETS=$2 GRAPHRUN_E2E_LENGTHS=$3 suite gpu_e2e_$1 $S/gpu_e2e --ignored --nocapture --test-threads 1 synthetic
}
e2e tiny tiny 1,7,129,2000,2049 & e2e tiny-llama tiny-llama 1,7,129,2000,2049 & e2e 0.5b-short 0.5b 1,7,129 &
e2e 0.5b-2000 0.5b 2000 & e2e 0.5b-2049 0.5b 2049 & e2e 1.5b 1.5b 1,7,129 &
suite backend_ops $S/backend_ops --ignored --nocapture --test-threads 1 &
suite gpu_persistent $S/gpu_persistent --ignored --nocapture --test-threads 1 &
suite gpu_batch $S/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size &
GRAPHRUN_MMA_MIN_ROWS_OTHER=5 suite gpu_batch_other5 $S/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size &
suite gpu_sample $S/gpu_sample --ignored --nocapture --test-threads 1 &
suite gpu_live_diff $S/gpu_live_diff --ignored --nocapture --test-threads 1 --skip q8_gpu_vs_f32_interpreter_reports_drift_over_500_steps_on_the_real_05b &
wait
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
