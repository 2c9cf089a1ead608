#!/usr/bin/env bash
# Call 1 (H200): v1 = the whole-row batched matvec (MatvecBatchWhole) loads each lane's next
# unit of weights (raw bytes, W::wraw) before it works on the current one, across parts of
# the K split and across its tasks (batch_whole_walk), against base = 4dd1490 (main).
# Same call: the 7B's whole-row bit-identity test on v1; Nsight time and instructions of
# the batched matvecs of one 7B step at 8 rows (base, v1); serve 1, 2, 4, 8 streams on the
# 7B, order base v1 v1 base base v1.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
GRAPHRUN_BIN=/tmp/ab/v1/graphrun timeout 150 /tmp/ab/v1/gpu_batch --ignored --nocapture --test-threads 1 wide_staged_rows_equal_each_sequence_alone > $OUT/gpu_batch_wide_v1.log 2>&1
echo "gpu_batch wide v1: exit $? ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ" $OUT/gpu_batch_wide_v1.log | head -5
ncu_run() {  # variant, tag
  GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8 timeout 120 ncu --target-processes all -k regex:matvec_batch --launch-skip 255 --launch-count 85 \
    --metrics gpu__time_duration.sum,smsp__inst_executed.sum,launch__block_size,launch__registers_per_thread --csv --print-units base /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_mv_7b_$2.csv 2> $OUT/ncu_mv_7b_$2.err
  python3 - $OUT/ncu_mv_7b_$2.csv <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; t = collections.defaultdict(list); ins = collections.defaultdict(list)
for r in rows[1:]:
    d = dict(zip(h, r))
    k = d["Kernel Name"].split("(")[0] + " grid " + d["Grid Size"] + " block " + d.get("Block Size", "?")
    if d.get("Metric Name") == "gpu__time_duration.sum": t[k].append(float(d["Metric Value"].replace(",", "")) / 1e3)
    if d.get("Metric Name") == "smsp__inst_executed.sum": ins[k].append(float(d["Metric Value"].replace(",", "")))
for k, v in sorted(t.items()):
    print(f"  {sys.argv[1].split('/')[-1]}: {k}: {len(v)} launches, {sum(v)/len(v):.1f} us each, {sum(ins[k])/max(1,len(ins[k]))/1e6:.2f} M warp instructions")
PY
  echo "ncu $2 ($SECONDS s)"
}
ncu_run base base; ncu_run v1 v1
mkdir -p /tmp/gr
[ -f /tmp/gr/7b.gguf ] || /tmp/ab/base/graphrun synth --preset 7b -o /tmp/gr/7b.gguf > /dev/null 2>&1
echo "synth done ($SECONDS s)"
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
serve_run base 7b 7b_base1; serve_run v1 7b 7b_v11; serve_run v1 7b 7b_v12; serve_run base 7b 7b_base2; serve_run base 7b 7b_base3; serve_run v1 7b 7b_v13
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
