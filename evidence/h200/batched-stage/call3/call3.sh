#!/usr/bin/env bash
# Call 3 (H200): the batched matvec with its activation rows staged in shared memory (v3)
# against main (base, bf6c7bb), same call: batched-step time per batch size (base, v3, v3,
# base), the gpu_batch correctness suite on v3, then `serve --parallel 8` aggregate decode
# with 1, 2, 4, 8 streams on the synthetic 1.5B and 7B (base, v3, v3, base per model).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
for v in base v3; do mkdir -p /tmp/ab/$v; for f in graphrun gpu_batch; do xz -dc carry/ab/$v/$f.xz > /tmp/ab/$v/$f; chmod +x /tmp/ab/$v/$f; done; done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv > $OUT/nvidia-smi.csv
time_run() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 150 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$2.log 2>&1
  echo "== $2"; grep "step " $OUT/steptime_$2.log
}
time_run base base1; time_run v3 v3a; time_run v3 v3b; time_run base base2
GRAPHRUN_BIN=/tmp/ab/v3/graphrun timeout 200 /tmp/ab/v3/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_v3.log 2>&1
echo "gpu_batch v3: exit $?"; grep "test result\|FAILED\|panicked" $OUT/gpu_batch_v3.log | head
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/v3/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 150 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3"; tail -5 $OUT/servebench_$3.txt
  kill $S; wait $S
}
for p in 1.5b 7b; do serve_run base $p ${p}_base1; serve_run v3 $p ${p}_v3a; serve_run v3 $p ${p}_v3b; serve_run base $p ${p}_base2; done
