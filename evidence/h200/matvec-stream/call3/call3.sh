#!/usr/bin/env bash
# device call 3 (2026-12-02): the decode matvec with each unit's activations loaded once per lane for all its
# rows (kernels/matvec.cuh, matvec_tile and pair_dot; the same dots in the same order) against main's.
# 1. mvbench2 (call 1's source): base = main's generated matvec family (8b2d39e), new = the same with the
#    working tree's matvec.cuh; built here with nvcc 13.0 -O3 -arch=sm_90 -std=c++17 -DFAM='"fam_{base,new}.cu"'.
#    new2 = new + Q4_K/Q5_K's 16-byte block head (d, dmin, scales) in one load (kernels/quant.cuh).
#    Outputs of the generated kernels compared bit for bit between the builds.
# 2. graphrun: base = 8b2d39e's binary, new = working tree (scripts/make-gpu-carry). Greedy tokens base vs new,
#    trace_exact new vs base, same-call bench A/B (base, new, new, base), parity suites on new, 7B profile.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* mvbench2_* backend_ops gpu_batch gpu_persistent; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O/base $O/new $O/new2; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done &
echo "=== mvbench2 $(date +%T)"
for run in 1 2; do for v in base new new2; do for m in plain pdl; do
  MVB_DUMP=$O/$v timeout 100 $C/mvbench2_$v $m > $O/mvbench2_${v}_${m}_$run.txt 2>&1 || echo "$v $m $run failed"
done; done; done
for v in new new2; do for f in $O/base/*.bin; do cmp -s $f $O/$v/$(basename $f) && echo "$v same $(basename $f)" || echo "$v DIFFER $(basename $f)"; done; done
for v in base new new2; do echo "== $v pdl run 2"; cut -c1-150 $O/mvbench2_${v}_pdl_2.txt; done
wait
echo "=== greedy tokens base vs new $(date +%T)"
for m in 0.5b 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_$b.txt 2> $O/run_${m}_$b.err; done
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m tokens equal" || echo "$m TOKENS DIFFER"; done
echo "=== trace_exact new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_${m}_$b 2>&1 | tail -1; done
  $G diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_$m.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$m.txt
  grep -E "compared|verdict|exit" $O/trace_new_vs_base_$m.txt | cut -c1-200; done
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
        for t in d["tests"]: r.setdefault((t["test"],b),[]).append(t["tok_s"])
for (t,b) in sorted(r):
    if b=="base":
        x,y=st.mean(r[(t,"base")]),st.mean(r.get((t,"new"),[0]))
        print(f"{m} {t:>16} base {x:9.1f} new {y:9.1f} ({100*(y/x-1):+.1f}%)")
PY
done
echo "=== 7B fused profile (new) $(date +%T)"
timeout 60 $G dump --stage fused --profile /tmp/gr/7b.gguf > $O/profile_7b_new.txt 2>&1; grep -E "blk.3.ffn|blk.3.attn_out|output" $O/profile_7b_new.txt | cut -c1-130
echo "=== backend_ops, gpu_batch, gpu_persistent (new) $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 90 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -3 $O/backend_ops.log
GRAPHRUN_BATCH_PRESETS=1.5b timeout 100 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log
grep -E "^test |test result|panicked|exit" $O/gpu_batch.log | cut -c1-200
left=$((560 - SECONDS)); [ $left -gt 20 ] && { timeout $left $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $? (limit $left s)" >> $O/gpu_persistent.log; grep -E "^test |test result|exit" $O/gpu_persistent.log | cut -c1-160; }
cd $OUT && tar czf r.tgz r && rm -rf r
