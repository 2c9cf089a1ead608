#!/usr/bin/env bash
# Call 7 (H200): v10 = v9 (branch kq-mma) + the single-row k-quant gate+up with its gate
# and up sums split over the quad's lanes (even lanes gather the gate row's, odd the up
# row's: half kq_add's gathers) + the batched Q4_K/Q5_K SwiGLU tile at 2 CTAs an SM (128
# registers: no spill under the gathers). Against base = 4dd1490 (main), same call:
# gpu_batch on v10 (bits); graphrun bench -p 512 -n 128 (7B, 1.5B; base v10 v10 base);
# serve 1, 2, 4, 8 streams (7B, 1.5B; base v10 v10 base); Nsight of the single-row
# matvecs and Q/K/V (7B, 1.5B; base, v10) as in call 6.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
mkdir -p /tmp/ab && xz -dc carry/ab.tar.xz | tar xf - -C /tmp/ab && chmod +x /tmp/ab/*/*
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
GRAPHRUN_BIN=/tmp/ab/v10/graphrun timeout 200 /tmp/ab/v10/gpu_batch --ignored --nocapture --test-threads 1 --skip batched_step_time_by_batch_size > $OUT/gpu_batch_v10.log 2>&1
echo "gpu_batch v10: exit $? ($SECONDS s)"; grep "test result\|FAILED\|panicked\|differ\|left\|right" $OUT/gpu_batch_v10.log | head -12
mkdir -p /tmp/gr
for p in 1.5b 7b; do [ -f /tmp/gr/$p.gguf ] || /tmp/ab/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf > /dev/null 2>&1; done
echo "synth done ($SECONDS s)"
bench_run() {  # variant, preset, tag
  timeout 60 /tmp/ab/$1/graphrun bench /tmp/gr/$2.gguf -p 512 -n 128 -r 2 --json > $OUT/bench_$3.json 2> $OUT/bench_$3.err
  echo "== bench $3 $(python3 -c "import json; d=json.load(open('$OUT/bench_$3.json')); print('pp512', round(d['pp_tok_s']), 'tg128', [round(t['tok_s'],1) for t in d['tests']][1:])" 2>&1) ($SECONDS s)"
}
for p in 7b 1.5b; do bench_run base $p ${p}_base1; bench_run v10 $p ${p}_v101; bench_run v10 $p ${p}_v102; bench_run base $p ${p}_base2; done
serve_run() {  # variant, preset, tag
  /tmp/ab/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $OUT/serve_server_$3.log & S=$!
  for i in $(seq 240); do python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:18090/health')" 2>/dev/null && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $OUT/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $OUT/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S
}
for p in 7b 1.5b; do serve_run base $p ${p}_base1; serve_run v10 $p ${p}_v101; serve_run v10 $p ${p}_v102; serve_run base $p ${p}_base2; done
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
for v in base v10; do for p in 7b 1.5b; do
  timeout 100 ncu -k regex:"matvec_q|qkv_q" --launch-skip 400 --launch-count 57 --metrics gpu__time_duration.sum,smsp__inst_executed.sum,launch__registers_per_thread \
    --csv --print-units base /tmp/ab/$v/graphrun bench /tmp/gr/$p.gguf -p 16 -n 8 -r 1 > $OUT/ncu1_${p}_$v.csv 2> $OUT/ncu1_${p}_$v.err; summ $OUT/ncu1_${p}_$v.csv
  echo "ncu1 $p $v ($SECONDS s)"
done; done
echo "end ($SECONDS s)"
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
