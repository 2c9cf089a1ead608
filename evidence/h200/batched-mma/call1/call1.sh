#!/usr/bin/env bash
# Call 1 (H200): the batched matvec on the tensor cores (v6: `matvec_mma_*` for q8 matvecs
# of quantized weights at 2 to 8 rows) against df0c59f (v5), same call: gpu_batch on v6
# (every row's logits bit-identical to the sequence alone), batched-step time (v5, v6, v6,
# v5), Nsight Compute on v6's 7B mma kernels, and `serve --parallel 8` aggregate decode at
# 1, 2, 4, 8 streams on the synthetic 1.5B and 7B (v5, v6, v6, v5).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
for v in v5 v6; do mkdir -p /tmp/ab/$v; for f in graphrun gpu_batch; do xz -dc carry/ab/$v/$f.xz > /tmp/ab/$v/$f; chmod +x /tmp/ab/$v/$f; done; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
GRAPHRUN_BIN=/tmp/ab/v6/graphrun timeout 200 /tmp/ab/v6/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_v6.log 2>&1
rc=$?; echo "gpu_batch v6: exit $rc"; grep "test result\|FAILED\|panicked\|differ" $OUT/gpu_batch_v6.log | head -20
time_run() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 150 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$2.log 2>&1
  echo "== $2 $(grep -o 'step [0-9.]* ms' $OUT/steptime_$2.log | awk '{printf "%s ", $2}')"
}
time_run v5 v5a; time_run v6 v6a; time_run v6 v6b; time_run v5 v5b
if [ $rc -eq 0 ]; then
  GRAPHRUN_BIN=/tmp/ab/v6/graphrun GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8 timeout 120 ncu --target-processes all -k regex:matvec_mma --launch-count 8 --section SpeedOfLight --section Occupancy --section LaunchStats /tmp/ab/v6/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_7b_mma.txt 2>&1
  echo "ncu: exit $?"; grep -E "matvec_mma|Duration|Memory Throughput|Registers Per|Achieved Occ|Grid Size" $OUT/ncu_7b_mma.txt | head -60
  mkdir -p /tmp/gr
  for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/v6/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
  serve_run() {  # variant, preset, tag
    /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
    for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
    timeout 150 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
    echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))')"
    kill $S; wait $S
  }
  for p in 1.5b 7b; do serve_run v5 $p ${p}_v5a; serve_run v6 $p ${p}_v6a; serve_run v6 $p ${p}_v6b; serve_run v5 $p ${p}_v5b; done
fi
tar czf $OUT/logs.tgz -C $OUT --exclude logs.tgz . 2>/dev/null; find $OUT -maxdepth 1 -type f ! -name logs.tgz ! -name nvidia-smi.csv -delete
