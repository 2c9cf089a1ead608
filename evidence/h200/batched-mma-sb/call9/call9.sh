#!/usr/bin/env bash
# Call 9 (H200): v12 = v11b (call 8) + the batched whole-row Q4_K/Q5_K matvec (7B at 2-3
# rows; 4+ with GRAPHRUN_MMA_MIN_ROWS=5) with its sums spread over the quads
# (batch_unit_spread, which now stops at the last input row); v12q = v12 + the batched
# Q/K/V spread from 2 rows (QKV_SPREAD_MIN_ROWS 2, was 4). Against base = 4dd1490 (main),
# same call: serve 1, 2, 4, 8 streams (7B, 1.5B; base v11b v12 v12q v12-mma-from-5 v12q
# v12 v11b base); Nsight of the batched kernels of a 7B step at 2 rows (base, v12, v12q);
# gpu_batch on v12 and v12q (bits; side by side).
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
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do
  serve_run base $p ${p}_base1; serve_run v11b $p ${p}_v11b1; serve_run v12 $p ${p}_v121; serve_run v12q $p ${p}_v12q1
  GRAPHRUN_MMA_MIN_ROWS=5 serve_run v12 $p ${p}_v12m5
  serve_run v12q $p ${p}_v12q2; serve_run v12 $p ${p}_v122; serve_run v11b $p ${p}_v11b2; serve_run base $p ${p}_base2
done
summ() {
  python3 - $1 <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows: print("  no rows"); sys.exit()
h = rows[0]; t = collections.defaultdict(list); ins = collections.defaultdict(list); reg = {}
for r in rows[1:]:
    d = dict(zip(h, r))
    k = d["Kernel Name"].split("(")[0] + " grid " + d["Grid Size"] + " block " + d.get("Block Size", "?")
    if d.get("Metric Name") == "gpu__time_duration.sum": t[k].append(float(d["Metric Value"].replace(",", "")) / 1e3)
    if d.get("Metric Name") == "smsp__inst_executed.sum": ins[k].append(float(d["Metric Value"].replace(",", "")))
    if d.get("Metric Name") == "launch__registers_per_thread": reg[k] = d["Metric Value"]
for k, v in sorted(t.items()):
    print(f"  {sys.argv[1].split('/')[-1]}: {k}: {len(v)} launches, {sum(v)/len(v):.1f} us each, {sum(ins[k])/max(1,len(ins[k]))/1e6:.2f} M warp instr, {reg.get(k)} regs")
PY
}
for v in base v12 v12q; do
  GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=2 timeout 120 ncu --target-processes all -k regex:"matvec_batch|qkv_batch" --launch-skip 300 --launch-count 113 \
    --metrics gpu__time_duration.sum,smsp__inst_executed.sum,launch__registers_per_thread --csv --print-units base /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu2_7b_$v.csv 2> $OUT/ncu2_7b_$v.err; summ $OUT/ncu2_7b_$v.csv
  echo "ncu2 7b $v ($SECONDS s)"
done
gb() {
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun timeout 200 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_$1.log 2>&1
  echo "gpu_batch $1: exit $? ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ\|left\|right" $OUT/gpu_batch_$1.log | head -12
}
gb v12 & gb v12q &
wait
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
