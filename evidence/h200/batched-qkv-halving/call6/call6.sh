#!/usr/bin/env bash
# Call 6 (H200): the batched Q/K/V kernel summing its 16 sums a lane by halving exchanges,
# with 8 lanes finishing the 8 input rows (v5), against the previous commit 45b37ed (v4),
# same call: batched-step time (v4, v5, v5, v4), gpu_batch on v5, `serve --parallel 8`
# aggregate decode at 1, 2, 4, 8 streams on the synthetic 1.5B and 7B (v4, v5, v5, v4).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
for v in v4 v5; do mkdir -p /tmp/ab/$v; for f in graphrun gpu_batch; do xz -dc carry/ab/$v/$f.xz > /tmp/ab/$v/$f; chmod +x /tmp/ab/$v/$f; done; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
time_run() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 150 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$2.log 2>&1
  echo "== $2 $(grep -o 'step [0-9.]* ms' $OUT/steptime_$2.log | awk '{printf "%s ", $2}')"
}
time_run v4 v4a; time_run v5 v5a; time_run v5 v5b; time_run v4 v4b
GRAPHRUN_BIN=/tmp/ab/v5/graphrun timeout 200 /tmp/ab/v5/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_v5.log 2>&1
echo "gpu_batch v5: exit $?"; grep "test result\|FAILED\|panicked" $OUT/gpu_batch_v5.log | head
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/v5/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 150 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))')"
  kill $S; wait $S
}
for p in 1.5b 7b; do serve_run v4 $p ${p}_v4a; serve_run v5 $p ${p}_v5a; serve_run v5 $p ${p}_v5b; serve_run v4 $p ${p}_v4b; done
tar czf $OUT/logs.tgz -C $OUT --exclude logs.tgz . 2>/dev/null; find $OUT -maxdepth 1 -type f ! -name logs.tgz ! -name nvidia-smi.csv -delete
