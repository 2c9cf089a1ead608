#!/usr/bin/env bash
# batched-mma-ahead call 2 (H200): base = main 78b6450 (the d77ad1a build, as call 1);
# v3 = call 1's v2 with SwiGLU's tensor-core loop also loading one super-block ahead (123
# registers) and the plain/residual one built for one CTA an SM (159 registers, one ahead);
# v4 = v3 with the plain/residual loop loading two ahead (214 registers). Part 1: gpu_batch's batched step time at 1, 2, 4, 8 rows (7B,
# 1.5B): base v3 v4 base v3 v4. Part 2: serve 1..8 streams: 7B base v4 v3 v4 base, 1.5B
# base v4 v3 base. Part 3: Nsight of the 1.5B 4-row step (base, v4; call 1's step times at
# 1.5B 4 and 8 rows were slower on v1/v2, serve's were not) and the 7B 8-row step (v4).
# Part 4: gpu_batch's parity suite on v4.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
echo "synth done ($SECONDS s)"
step() {  # variant, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=7b,1.5b GRAPHRUN_BATCH_SIZES=1,2,4,8 timeout 200 /tmp/ab/$1/gpu_batch \
    batched_step_time_by_batch_size --ignored --nocapture > $OUT/step_$2.log 2>&1
  echo "== step $2: $(grep -o '[0-9.a-z]* q8: batch [0-9]: step [0-9.]* ms' $OUT/step_$2.log | awk '{print $1"/"$4$6}' | tr '\n' ' ') ($SECONDS s)"
}
step base base1; step v3 v31; step v4 v41; step base base2; step v3 v32; step v4 v42
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,6,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
serve_run base 7b 7b_base1; serve_run v4 7b 7b_v41; serve_run v3 7b 7b_v31; serve_run v4 7b 7b_v42; serve_run base 7b 7b_base2
serve_run base 1.5b 1.5b_base1; serve_run v4 1.5b 1.5b_v41; serve_run v3 1.5b 1.5b_v31; serve_run base 1.5b 1.5b_base2
summ() {
python3 - $1 <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
h = rows[0]; t = collections.defaultdict(float); n = collections.Counter(); by = collections.defaultdict(float)
ids = set()
for r in rows[1:]:
    d = dict(zip(h, r)); k = d["Kernel Name"].split("(")[0] + " grid " + d["Grid Size"]
    v = float(d["Metric Value"].replace(",", ""))
    if d["Metric Name"] == "gpu__time_duration.sum": t[k] += v / 1e3; n[k] += 1; ids.add(d["ID"])
    if d["Metric Name"] == "dram__bytes_read.sum": by[k] += v
tot = sum(t.values())
print(f"{len(ids)} launches, {tot:.0f} us in all")
for k, v in sorted(t.items(), key=lambda x: -x[1]):
    print(f"{v:9.1f} us {100*v/tot:5.1f}%  {n[k]:4d} x {v/n[k]:7.1f} us  {by[k]/max(v,1e-9)/1e3:7.0f} GB/s  {k}")
PY
}
prof() {  # variant, preset, rows, skip, count, tag
  GRAPHRUN_BIN=/tmp/ab/$1/graphrun GRAPHRUN_BATCH_PRESETS=$2 GRAPHRUN_BATCH_SIZES=$3 timeout 100 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum --csv --print-units base \
    --launch-skip $4 --launch-count $5 /tmp/ab/$1/gpu_batch batched_step_time_by_batch_size --ignored --nocapture > $OUT/ncu_$6.csv 2> $OUT/ncu_$6.err
  echo "ncu $6: exit $? ($SECONDS s)"; summ $OUT/ncu_$6.csv | tee $OUT/summary_$6.txt; xz -9 $OUT/ncu_$6.csv
}
prof base 1.5b 4 4000 600 1.5b_b4_base
prof v4 1.5b 4 4000 600 1.5b_b4_v4
[ $SECONDS -lt 330 ] && prof v4 7b 8 6500 700 7b_b8_v4
GRAPHRUN_BIN=/tmp/ab/v4/graphrun timeout 200 /tmp/ab/v4/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_v4.log 2>&1
echo "gpu_batch v4: exit $? ($SECONDS s) $(grep 'test result' $OUT/gpu_batch_v4.log)"
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
