#!/usr/bin/env bash
# device call (2026-12-02, second session): decode matvec / Q/K/V kernels that stage their input (RMSNorm,
# Q8) in each CTA instead of after a prep launch (one-wave grids, inputs up to 4,096 wide), against main
# f504282 (batched steps keep the prep launch: gpu_batch not carried; gpu_e2e left out by the 64 MiB carry limit — the
# bit-identity checks against base cover what it would). new = working tree (scripts/make-gpu-carry), base = f504282's binary. Also new with
# GRAPHRUN_STAGE_INPUT=0 (prep launches as before) as a same-binary check.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens base vs new vs new with GRAPHRUN_STAGE_INPUT=0 $(date +%T)"
for m in 0.5b 1.5b 7b; do
  timeout 60 $B run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_base.txt 2> $O/run_${m}_base.err
  timeout 60 $G run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_new.txt 2> $O/run_${m}_new.err
  GRAPHRUN_STAGE_INPUT=0 timeout 60 $G run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_new0.txt 2> $O/run_${m}_new0.err
  for v in new new0; do cmp -s $O/run_${m}_base.txt $O/run_${m}_$v.txt && echo "$m $v: tokens equal to base" || echo "$m $v: TOKENS DIFFER"; done; done
echo "=== trace_exact new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  $G diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_$m.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$m.txt
  echo "$m: $(grep -E "verdict" $O/trace_new_vs_base_$m.txt | cut -c1-120)"; done
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b 0.5b; do for b in base new new base; do X=$G; [ $b = base ] && X=$B
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
echo "=== fused profiles (new) $(date +%T)"
for m in 7b 1.5b; do timeout 60 $G dump --stage fused --profile /tmp/gr/$m.gguf > $O/profile_${m}_new.txt 2>&1; grep -E "^k(1|2|3|4|5) |total" $O/profile_${m}_new.txt | cut -c1-100; done
echo "=== backend_ops, gpu_persistent (new) $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 90 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; grep -E "test result|exit" $O/backend_ops.log
timeout 100 $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?" >> $O/gpu_persistent.log; grep -E "test result|exit" $O/gpu_persistent.log | cut -c1-160
cd $OUT && tar czf r.tgz r && rm -rf r
