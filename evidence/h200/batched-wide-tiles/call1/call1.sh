#!/usr/bin/env bash
# Call 1 (H200): v1 = batched CTA tiles stage rows too long for the 48 KiB rule in CTAs of
# 512 threads (batch_matvec_wide_tiles), Q6_K's staged scale slot in 8 bytes, the staged
# values copied by cp.async, the batched matvecs' first weights prefetched into L2 before
# the wait; against base = d88bd13 (main), same call: gpu_batch on v1 (all but the timing
# test); step time base v1 v1 base; serve 1, 2, 4, 8 streams on 7B and 1.5B, same order;
# Nsight time of every matvec_batch launch of a 7B and a 1.5B step at 8 rows (both builds).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
A=base; B=v1
GRAPHRUN_BIN=/tmp/ab/$B/graphrun timeout 300 /tmp/ab/$B/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_$B.log 2>&1
rc=$?; echo "gpu_batch $B: exit $rc ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ\|compared" $OUT/gpu_batch_$B.log | head -12
time_run() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 100 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$2.log 2>&1
  echo "== $2 $(grep -o 'step [0-9.]* ms' $OUT/steptime_$2.log | awk '{printf "%s ", $2}') ($SECONDS s)"
}
time_run $A ${A}a; time_run $B ${B}a; time_run $B ${B}b; time_run $A ${A}b
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/$A/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
echo "synth done ($SECONDS s)"
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do serve_run $A $p ${p}_${A}a; serve_run $B $p ${p}_${B}a; serve_run $B $p ${p}_${B}b; serve_run $A $p ${p}_${A}b; done
# Nsight: every matvec_batch launch of one step at 8 rows (85 a step on both presets).
for p in 7b 1.5b; do for v in $A $B; do
  GRAPHRUN_BIN=/tmp/ab/$v/graphrun GRAPHRUN_BATCH_PRESETS=$p GRAPHRUN_BATCH_SIZES=8 timeout 100 ncu --target-processes all -k regex:matvec_batch --launch-skip 255 --launch-count 85 \
    --metrics gpu__time_duration.sum,launch__block_size,launch__registers_per_thread --csv --print-units base /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_mv_${p}_$v.csv 2> $OUT/ncu_mv_${p}_$v.err
  python3 - $OUT/ncu_mv_${p}_$v.csv <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; t = collections.defaultdict(list)
for r in rows[1:]:
    d = dict(zip(h, r))
    if d.get("Metric Name") == "gpu__time_duration.sum":
        t[d["Kernel Name"].split("(")[0] + " grid " + d["Grid Size"] + " block " + d.get("Block Size", "?")].append(float(d["Metric Value"].replace(",", "")) / 1e3)
tot = 0
for k, v in sorted(t.items()):
    tot += sum(v)
    print(f"  {sys.argv[1].split('/')[-1]}: {k}: {len(v)} launches, {sum(v)/len(v):.1f} us each (min {min(v):.1f}, max {max(v):.1f})")
print(f"  {sys.argv[1].split('/')[-1]}: all: {tot:.0f} us")
PY
done; done
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
