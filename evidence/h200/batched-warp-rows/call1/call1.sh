#!/usr/bin/env bash
# Call 1 (H200): the batched matvec with warp-owned rows (no barrier, no shared partial
# sums; staging with 4 loads in flight a thread) against v9 (45c4e9c), same call.
# Builds: v9 = 45c4e9c; v10 = warp-owned rows, Q4_K/Q5_K SwiGLU at 3 CTAs per SM (80
# registers, as v9); v11 = v10 with Q4_K/Q5_K SwiGLU at 2 CTAs (128 registers: its loop
# spills 6 accumulators at 80). gpu_batch (bit identity etc.) on v10 and v11; Nsight per-
# kernel times of one 7B step at 8 rows on all three; step time v9 v10 v11 v11 v10 v9;
# serve 1/2/4/8 streams on v9 and the faster of v10/v11 by Nsight (A X X A), both presets.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
# The six stripped binaries travel as one xz tar (carry/ab.tar.xz; one solid stream shares the builds' common bytes).
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
ok=1
for v in v10 v11; do
  GRAPHRUN_BIN=/tmp/ab/$v/graphrun timeout 200 /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_$v.log 2>&1
  rc=$?; echo "gpu_batch $v: exit $rc ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ" $OUT/gpu_batch_$v.log | head -12
  [ $rc -eq 0 ] || ok=0
done
for v in v9 v10 v11; do
  GRAPHRUN_BIN=/tmp/ab/$v/graphrun GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8 timeout 150 ncu --target-processes all -k regex:matvec_batch --launch-skip 255 --launch-count 85 \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,smsp__issue_active.avg.pct_of_peak_sustained_active --csv --print-units base /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_7b_b8_$v.csv 2> $OUT/ncu_7b_b8_$v.err
  echo "ncu $v: exit $? ($SECONDS s)"
  python3 - $OUT/ncu_7b_b8_$v.csv > $OUT/ncu_sum_$v.txt <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; t = collections.defaultdict(float); n = collections.Counter(); iss = collections.defaultdict(float)
for r in rows[1:]:
    d = dict(zip(h, r)); k = d["Kernel Name"].split("(")[0]; val = float(d["Metric Value"].replace(",", ""))
    if d.get("Metric Name") == "gpu__time_duration.sum": t[k] += val / 1e3; n[k] += 1
    if d.get("Metric Name") == "smsp__issue_active.avg.pct_of_peak_sustained_active": iss[k] += val
for k in sorted(t, key=lambda k: -t[k]): print(f"  {k}: {n[k]} launches, {t[k]:.1f} us, {t[k]/n[k]:.1f} us each, issue {iss[k]/n[k]:.0f}%")
print(f"  total {sum(t.values()):.1f} us")
PY
  cat $OUT/ncu_sum_$v.txt
done
X=v10
t10=$(grep total $OUT/ncu_sum_v10.txt | awk '{print $2}'); t11=$(grep total $OUT/ncu_sum_v11.txt | awk '{print $2}')
python3 -c "import sys; sys.exit(0 if float('${t11:-1e9}') < float('${t10:-1e9}') else 1)" && X=v11
echo "serve build: $X (ncu totals v10 $t10, v11 $t11)"
time_run() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 150 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$2.log 2>&1
  echo "== $2 $(grep -o 'step [0-9.]* ms' $OUT/steptime_$2.log | awk '{printf "%s ", $2}') ($SECONDS s)"
}
time_run v9 v9a; time_run v10 v10a; time_run v11 v11a; time_run v11 v11b; time_run v10 v10b; time_run v9 v9b
if [ $ok -eq 1 ]; then
  mkdir -p /tmp/gr
  for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/v9/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
  serve_run() {  # variant, preset, tag
    [ $SECONDS -lt 530 ] || { echo "skip serve $3 (time)"; return; }
    /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
    for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
    timeout 100 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
    echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
    kill $S; wait $S
  }
  for p in 7b 1.5b; do serve_run v9 $p ${p}_v9a; serve_run $X $p ${p}_${X}a; serve_run $X $p ${p}_${X}b; serve_run v9 $p ${p}_v9b; done
fi
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
