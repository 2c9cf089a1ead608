#!/usr/bin/env bash
# q4k-decode call 1 (H200; prepared 2026-12-04, NOT RUN: no device was lent this session). Carry (build.sh):
# mvbulk_{base,q6c,q4c,q4c2,q4e2,q4s,q4z}, graphrun-base (main), graphrun + gpu_batch (q4k-clamp c8118ce).
# (1) mvbulk: the generated decode matvecs of each build, builds alternating, twice; outputs compared bit for
#     bit with base's; (2) graphrun q4k-clamp against main: greedy tokens, trace_exact; (3) gpu_batch (new).
# Results are re-packed into $OUT/r.tgz after every step, so a timeout still returns what ran.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
V="base q6c q4c q4c2 q4e2 q4s q4z"
echo "=== mvbulk $(date +%T)"
for v in $V; do mkdir -p /tmp/dump_$v; done
for rep in 1 2; do for v in $V; do
  MVB_BASE_ONLY=1 MVB_DUMP=/tmp/dump_$v timeout 60 $C/mvbulk_$v > $O/mvbulk_${v}_$rep.txt 2>&1; echo "$v $rep rc $? ($SECONDS s)"
done; pack; done
for v in ${V#base }; do for f in /tmp/dump_base/*.bin; do b=$(basename $f); cmp -s $f /tmp/dump_$v/$b && echo "$v $b: identical to base" || echo "$v $b: DIFFERS from base"; done; done | tee $O/mvbulk_bits.txt
python3 $C/mvsum.py $O $V | tee $O/mvbulk_summary.txt; pack
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens base vs new $(date +%T)"
for m in 0.5b 1.5b 7b; do
  timeout 60 $B run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_base.txt 2> $O/run_${m}_base.err
  timeout 60 $G run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_new.txt 2> $O/run_${m}_new.err
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m: tokens equal to base" || echo "$m: TOKENS DIFFER"; done | tee $O/tokens.txt
echo "=== trace_exact new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  $G diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_$m.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$m.txt
  echo "$m: $(grep -E "verdict" $O/trace_new_vs_base_$m.txt | cut -c1-120)"; done; pack
echo "=== gpu_batch (new) $(date +%T)"
timeout 150 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log; grep -E "test result|exit" $O/gpu_batch.log
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
