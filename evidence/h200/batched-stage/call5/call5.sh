#!/usr/bin/env bash
# Call 5 (H200): v4 = v3 (activation rows staged in shared memory, one wave of CTAs) + the
# halving reduction of a whole-warp tile (batch_tile_finish)
# against main (base, bf6c7bb), same call: batched-step time per batch size (base, v4, v4,
# base), the gpu_batch correctness suite on v4, then `serve --parallel 8` aggregate decode
# with 1, 2, 4, 8 streams on the synthetic 1.5B and 7B (base, v4, v4, base per model).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
for v in base v4; do mkdir -p /tmp/ab/$v; for f in graphrun gpu_batch; do xz -dc carry/ab/$v/$f.xz > /tmp/ab/$v/$f; chmod +x /tmp/ab/$v/$f; done; done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv > $OUT/nvidia-smi.csv
time_run() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 150 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$2.log 2>&1
  echo "== $2"; grep "step " $OUT/steptime_$2.log
}
time_run base base1; time_run v4 v4a; time_run v4 v4b; time_run base base2
GRAPHRUN_BIN=/tmp/ab/v4/graphrun timeout 200 /tmp/ab/v4/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_v4.log 2>&1
echo "gpu_batch v4: exit $?"; grep "test result\|FAILED\|panicked" $OUT/gpu_batch_v4.log | head
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/v4/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 150 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3"; grep median $OUT/servebench_$3.txt | cut -c1-110
  kill $S; wait $S
}
for p in 1.5b 7b; do serve_run base $p ${p}_base1; serve_run v4 $p ${p}_v4a; serve_run v4 $p ${p}_v4b; serve_run base $p ${p}_base2; done
# Nsight Compute on v4's SwiGLU matvec, 7B, 8 rows (as ncu-v3/ncu.sh)
GRAPHRUN_BIN=/tmp/ab/v4/graphrun GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8 timeout 120 ncu --kernel-name regex:matvec_batch_q4_k_q8_swiglu --launch-skip 84 --launch-count 1 --set full --import-source no \
  -o /tmp/swiglu_v4 /tmp/ab/v4/gpu_batch batched_step_time_by_batch_size --ignored --nocapture > /tmp/ncu_run.log 2>&1
ncu -i /tmp/swiglu_v4.ncu-rep --print-details all > /tmp/swiglu_v4_details.txt 2>&1
grep -E "Duration|Issued Warp Per Scheduler  |L1: Data Pipe Lsu Wavefronts" /tmp/swiglu_v4_details.txt | head -4
mkdir -p $OUT/more; cp /tmp/swiglu_v4_details.txt $OUT/more/
# keep the file count under the device tool's limit: logs into one archive
tar czf $OUT/logs.tgz -C $OUT --exclude logs.tgz --exclude more . 2>/dev/null; find $OUT -maxdepth 1 -type f ! -name logs.tgz ! -name nvidia-smi.csv -delete
