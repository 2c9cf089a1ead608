#!/usr/bin/env bash
# device call 3 of 2026-12-02 (second session): the decode attention merge's weighted-V loop with 16 loads in
# flight instead of 8 (same order, same bits) against main f504282 — attnbench (call1's source) with both
# attention families, tokens, trace_exact, bench A/B at depth 0 and 4,096 — then the GPU suites not run
# since f504282's attention change (gpu_trace_diff, gpu_sample, gpu_e2e in the time left) on the new binary.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
echo "=== attnbench main, u16, main $(date +%T)"
for v in main u16 main2; do b=${v%2}; timeout 60 $C/attnbench_$b > $O/attnbench_$v.txt 2>&1; done
for v in main u16 main2; do echo "== $v"; grep -E "^== |^npos" $O/attnbench_$v.txt | cut -c1-60; done
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens base vs new $(date +%T)"
for m in 0.5b 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_$b.txt 2> $O/run_${m}_$b.err; done
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m tokens equal" || echo "$m TOKENS DIFFER"; done
echo "=== trace_exact new vs base (prompt of 2,000 tokens: 32 splits active) $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(190)]))")
for m in 1.5b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.27.*,output*,result*' -o /tmp/tr_${m}_$b > $O/trace_${m}_$b.out 2>&1; done
  $G diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_$m.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$m.txt
  echo "$m: $(grep -E "verdict" $O/trace_new_vs_base_$m.txt | cut -c1-120)"; done
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b; do for b in base new new base; do X=$G; [ $b = base ] && X=$B
  timeout 100 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_${b}_$(date +%s%N).json 2>>$O/bench_${m}_$b.err; done
  python3 - $O $m <<'PY'
import json,glob,sys,statistics as st
o,m=sys.argv[1],sys.argv[2]
r={}
for b in ("base","new"):
    for f in sorted(glob.glob(f"{o}/bench_{m}_{b}_*.json")):
        try: d=json.load(open(f))
        except Exception as e: print("bad",f,e); continue
        for t in d["tests"]: r.setdefault((t["test"],t["depth"],b),[]).append(t["tok_s"])
for (t,dp,b) in sorted(r):
    if b=="base":
        x,y=r[(t,dp,"base")],r.get((t,dp,"new"),[0])
        print(f"{m} {t:>6} d{dp:<5} base {' '.join('%.1f'%v for v in x)}  new {' '.join('%.1f'%v for v in y)}  ({100*(st.mean(y)/st.mean(x)-1):+.1f}%)")
PY
done
echo "=== gpu_trace_diff, gpu_sample, gpu_e2e (new) $(date +%T)"
timeout 120 $C/gpu_trace_diff --ignored --nocapture --test-threads 1 > $O/gpu_trace_diff.log 2>&1; echo "gpu_trace_diff exit $?" >> $O/gpu_trace_diff.log; grep -E "test result|exit" $O/gpu_trace_diff.log
timeout 90 $C/gpu_sample --ignored --nocapture --test-threads 1 > $O/gpu_sample.log 2>&1; echo "gpu_sample exit $?" >> $O/gpu_sample.log; grep -E "test result|exit" $O/gpu_sample.log
left=$((560 - SECONDS)); echo "gpu_e2e with $left s"
[ $left -gt 30 ] && { timeout $left $C/gpu_e2e --ignored --nocapture --test-threads 1 > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $? (limit $left s)" >> $O/gpu_e2e.log; grep -E "^test |test result|panicked|exit" $O/gpu_e2e.log | cut -c1-160; }
cd $OUT && tar czf r.tgz r && rm -rf r
