#!/usr/bin/env bash
# device call 1 of 2026-12-02 (second session): (a) where a decode attention launch's ~10 µs go
# (attnbench, built here: nvcc -O3 -arch=sm_90 -std=c++17 -DFAM='"fam_att.cu"' with fam_att.cu =
# the generated kernels_attention.cu of main 8bd66ae); (b) branch q6k-staged (rebased on 8bd66ae:
# Q6_K / Q8_0 / Q5_0 / Q4_0 decode matvecs staged through shared memory) against main: mvbench2
# (matvec-stream/call6-staged's plan), tokens, trace_exact, bench A/B, backend_ops, gpu_batch.
# carry: attnbench, mvbench2_commit (1da4dde kernels = main's), mvbench2_staged, graphrun (branch),
# graphrun-base (1da4dde binary; 8bd66ae differs only in Rust refactoring), backend_ops, gpu_batch (branch).
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
echo "=== attnbench $(date +%T)"
timeout 120 $C/attnbench > $O/attnbench.txt 2>&1; echo "exit $?" >> $O/attnbench.txt; cat $O/attnbench.txt
echo "=== mvbench2 commit vs staged $(date +%T)"
mkdir -p $O/commit $O/staged
for run in 1 2; do for v in commit staged; do
  MVB_DUMP=$O/$v timeout 100 $C/mvbench2_$v pdl > $O/mvbench2_${v}_pdl_$run.txt 2>&1 || echo "$v $run failed"
done; done
echo "staged vs commit: $(for f in $O/commit/*.bin; do cmp -s $f $O/staged/$(basename $f) && echo -n "= " || echo -n "$(basename $f .bin):DIFFER "; done)"
for v in commit staged; do echo "== $v"; cut -c1-122 $O/mvbench2_${v}_pdl_2.txt | tail -n +3; done
rm -rf $O/commit $O/staged
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens base vs staged $(date +%T)"
for m in 0.5b 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_$b.txt 2> $O/run_${m}_$b.err; done
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m tokens equal" || echo "$m TOKENS DIFFER"; done
echo "=== trace_exact staged vs base $(date +%T)"
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
echo "=== backend_ops (staged) $(date +%T)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops.jsonl timeout 90 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; tail -2 $O/backend_ops.log
echo "=== ncu: attention (1.5B shape, 576 positions) and the staged Q6_K add $(date +%T)"
timeout 90 ncu --set full --import-source no --kernel-name attention_split_f16 --launch-skip 1765 --launch-count 1 $C/attnbench > $O/ncu_attention_1.5b_576.txt 2>&1
grep -E "^    (Duration|DRAM Throughput|L1/TEX Cache Throughput|Issue Slots Busy|Registers Per Thread|Achieved Occupancy)" $O/ncu_attention_1.5b_576.txt
timeout 90 ncu --set full --import-source no --kernel-name regex:"^matvec_q6_k_q8_add" --launch-skip 30 --launch-count 1 $C/mvbench2_staged plain > $O/ncu_staged_q6_k_add.txt 2>&1
grep -E "^    (Duration|DRAM Throughput|L1/TEX Cache Throughput|Issue Slots Busy)" $O/ncu_staged_q6_k_add.txt
left=$((570 - SECONDS)); echo "=== gpu_batch (staged), $left s left $(date +%T)"
[ $left -gt 60 ] && { GRAPHRUN_BATCH_PRESETS=1.5b timeout $left $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log
grep -E "^test |batch [0-9]: step|test result|panicked|exit" $O/gpu_batch.log | cut -c1-160; }
cd $OUT && tar czf r.tgz r && rm -rf r
