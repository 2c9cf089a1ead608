#!/usr/bin/env bash
# device call 4 (2026-12-02): the change as committed, against main (8b2d39e). The decode matvecs
# (kernels/matvec.cuh, quant.cuh) load each unit's activations once per lane for all its rows, Q4_K/Q5_K's
# 16-byte block head in one load, and Q6_K's 32-byte runs by 16-byte loads (ld_run32_a2); same dots, same order.
# 1. mvbench2 (call 1's source), built here with nvcc 13.0 -O3 -arch=sm_90 -std=c++17 -DFAM='"fam_<v>.cu"':
#    base = main's generated matvec family, new2 = activations once + Q4_K head, new3 = new2 + Q6_K runs
#    (= the commit), new3b3 = new3 with 3 CTAs/SM launch bounds on the Q4_K/Q6_K add/none kernels (probe).
# 2. graphrun: base = 8b2d39e, new = working tree (scripts/make-gpu-carry): tokens, trace_exact, bench A/B
#    (base, new, new, base), 7B fused profile, parity suites on new.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x graphrun* mvbench2_* backend_ops gpu_batch gpu_persistent; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O/base $O/new2 $O/new3 $O/new3b3; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done &
echo "=== mvbench2 $(date +%T)"
for run in 1 2; do for v in base new2 new3 new3b3; do
  MVB_DUMP=$O/$v timeout 100 $C/mvbench2_$v pdl > $O/mvbench2_${v}_pdl_$run.txt 2>&1 || echo "$v $run failed"
done; done
for v in new2 new3 new3b3; do echo "$v vs base: $(for f in $O/base/*.bin; do cmp -s $f $O/$v/$(basename $f) && echo -n "= " || echo -n "$(basename $f .bin):DIFFER "; done)"; done
for v in base new2 new3 new3b3; do echo "== $v pdl run 2"; cut -c1-122 $O/mvbench2_${v}_pdl_2.txt | tail -n +3; done
wait
echo "=== greedy tokens base vs new $(date +%T)"
for m in 0.5b 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_$b.txt 2> $O/run_${m}_$b.err; done
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m tokens equal" || echo "$m TOKENS DIFFER"; done
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
echo "=== 7B and 1.5B fused profiles (new) $(date +%T)"
for m in 7b 1.5b; do timeout 60 $G dump --stage fused --profile /tmp/gr/$m.gguf > $O/profile_${m}_new.txt 2>&1; done
grep -E "blk.3.ffn|blk.3.attn_out|blk.5.ffn_down|output" $O/profile_7b_new.txt | cut -c1-125
echo "=== backend_ops, gpu_batch, gpu_persistent (new) $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 90 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -2 $O/backend_ops.log
GRAPHRUN_BATCH_PRESETS=1.5b timeout 100 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log
grep -E "^test |step time|batch [0-9]: step|test result|panicked|exit" $O/gpu_batch.log | cut -c1-160
timeout 80 $C/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?" >> $O/gpu_persistent.log; grep -E "test result|exit" $O/gpu_persistent.log | cut -c1-160
cd $OUT && tar czf r.tgz r && rm -rf r
