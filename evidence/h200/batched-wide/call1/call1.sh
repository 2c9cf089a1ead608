#!/usr/bin/env bash
# Call 1 (H200): v20 = the whole-row batched matvec stages rows too long for the 48 KiB rule
# in CTAs of 512 threads (one an SM; batch_matvec_wide); v22 = v20 + whole-row tasks dealt
# warp-major over a full wave of CTAs, and a batched step's decode attention launches
# ceil(n_split / rows) CTAs a (KV head, row), each looping over splits; against v17 =
# f5609ad (kernels as 17edd1d), same call: gpu_batch on v22 (all tests, with the new 7B
# one); Nsight time of a 7B step's matvec_batch launches at 8 rows (all three);
# step time v17 v20 v22 v22 v20 v17; serve 1, 2, 4, 8 streams on 7B and 1.5B, same order;
# Nsight time of the 1.5B's decode attention at 1 and 8 rows (v20, v22).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
A=v17; B=v20; C=v22
GRAPHRUN_BIN=/tmp/ab/$C/graphrun timeout 240 /tmp/ab/$C/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_$C.log 2>&1
rc=$?; echo "gpu_batch $C: exit $rc ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ\|compared" $OUT/gpu_batch_$C.log | head -12
for v in $A $B $C; do
  GRAPHRUN_BIN=/tmp/ab/$v/graphrun GRAPHRUN_BATCH_PRESETS=7b GRAPHRUN_BATCH_SIZES=8 timeout 100 ncu --target-processes all -k regex:matvec_batch --launch-skip 300 --launch-count 120 \
    --metrics gpu__time_duration.sum,launch__block_size --csv --print-units base /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_mv_7b_$v.csv 2> $OUT/ncu_mv_7b_$v.err
  python3 - $OUT/ncu_mv_7b_$v.csv <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; t = collections.defaultdict(list)
for r in rows[1:]:
    d = dict(zip(h, r))
    if d.get("Metric Name") == "gpu__time_duration.sum":
        t[d["Kernel Name"].split("(")[0] + " grid " + d["Grid Size"] + " block " + d.get("Block Size", "?")].append(float(d["Metric Value"].replace(",", "")) / 1e3)
for k, v in sorted(t.items()):
    lo = [x for x in v if x < 50]; hi = [x for x in v if x >= 50]
    print(f"  {sys.argv[1].split('/')[-1]}: {k}: {len(v)} launches; {len(lo)} under 50 us: {sum(lo)/max(1,len(lo)):.1f}; {len(hi)} over: {sum(hi)/max(1,len(hi)):.1f}")
PY
done
time_run() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=1.5b,7b timeout 100 /tmp/ab/$1/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/steptime_$2.log 2>&1
  echo "== $2 $(grep -o 'step [0-9.]* ms' $OUT/steptime_$2.log | awk '{printf "%s ", $2}') ($SECONDS s)"
}
time_run $A ${A}a; time_run $B ${B}a; time_run $C ${C}a; time_run $C ${C}b; time_run $B ${B}b; time_run $A ${A}b
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/$A/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do for v in $A $B $C; do serve_run $v $p ${p}_${v}a; done; for v in $C $B $A; do serve_run $v $p ${p}_${v}b; done; done
# The decode attention of a 1.5B step at 1 and 8 rows (v20, v22).
for v in $B $C; do for b in 1 8; do
  GRAPHRUN_BIN=/tmp/ab/$v/graphrun GRAPHRUN_BATCH_PRESETS=1.5b GRAPHRUN_BATCH_SIZES=$b timeout 100 ncu --target-processes all -k regex:attention_split --launch-skip 224 --launch-count 56 \
    --metrics gpu__time_duration.sum --csv --print-units base /tmp/ab/$v/gpu_batch --ignored --nocapture --test-threads 1 batched_step_time_by_batch_size > $OUT/ncu_attn_1.5b_b${b}_$v.csv 2> $OUT/ncu_attn_1.5b_b${b}_$v.err
  python3 - $OUT/ncu_attn_1.5b_b${b}_$v.csv <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; v = [float(dict(zip(h, r))["Metric Value"].replace(",", "")) / 1e3 for r in rows[1:] if dict(zip(h, r)).get("Metric Name") == "gpu__time_duration.sum"]
print(f"  {sys.argv[1].split('/')[-1]}: {len(v)} launches, {sum(v)/max(1,len(v)):.2f} us each")
PY
done; done
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
