#!/usr/bin/env bash
# q4k-decode call 2 (H200, 2026-12-05). Carry: graphrun-base (main 685704d), graphrun-q4c (q4k-consume 01d5aab:
# q6k-loads + Q4_K branch-free decode), graphrun-pl (persist-ldg2 668dabb: q4c + the persistent kernel's weights
# read with LDG). (1) greedy tokens and trace_exact against base; (2) bench A/B, runs interleaved
# base q4c pl pl q4c base, `-p 512 -n 128 -d 0,4096 -r 2` (graph decode) and `-p 512 -n 128 -r 2 --decode-kernel
# persistent` (base q4c pl pl q4c base, also at depth 4,096); (3) fused profiles 7b (base, q4c). $OUT/r.tgz re-packed after each step.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $C/graphrun-base synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens vs base $(date +%T)"
for m in 0.5b 1.5b 7b; do for k in graph persistent; do for b in base q4c pl; do
  timeout 60 $C/graphrun-$b run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids --decode-kernel $k > $O/run_${m}_${k}_$b.txt 2> $O/run_${m}_${k}_$b.err; done
  for b in q4c pl; do [ -s $O/run_${m}_${k}_$b.txt ] || continue
    cmp -s $O/run_${m}_${k}_base.txt $O/run_${m}_${k}_$b.txt && echo "$m $k $b: tokens equal to base" || echo "$m $k $b: TOKENS DIFFER"; done; done; done | tee $O/tokens.txt
echo "=== trace_exact q4c vs base (graph) $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 1.5b 7b; do for b in base q4c; do
  timeout 60 $C/graphrun-$b trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  $C/graphrun-q4c diff /tmp/tr_${m}_q4c /tmp/tr_${m}_base --contract trace_exact > $O/trace_q4c_vs_base_$m.txt 2>&1; echo "diff exit $?" >> $O/trace_q4c_vs_base_$m.txt
  echo "$m: $(grep -E "verdict" $O/trace_q4c_vs_base_$m.txt | cut -c1-120)"; done; pack
echo "=== bench A/B graph $(date +%T)"
for m in 7b 1.5b 0.5b; do for b in base q4c pl pl q4c base; do
  timeout 100 $C/graphrun-$b bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base q4c pl | tee -a $O/bench_summary.txt; pack; done
echo "=== bench A/B persistent $(date +%T)"
for m in 7b 1.5b 0.5b; do for b in base q4c pl pl q4c base; do
  timeout 100 $C/graphrun-$b bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --decode-kernel persistent --json > $O/bench_${m}_persistent_${b}_$(date +%s%N).json 2>>$O/bench_${m}_persistent_$b.err; done
  python3 $C/benchsum2.py $O $m persistent base q4c pl | tee -a $O/bench_summary.txt; pack; done
echo "=== fused profiles 7b $(date +%T)"
for b in base q4c; do timeout 60 $C/graphrun-$b dump --stage fused --profile /tmp/gr/7b.gguf > $O/profile_7b_$b.txt 2>&1; echo "7b $b: exit $?"; done
for b in base pl; do timeout 60 $C/graphrun-$b dump --stage fused --profile --decode-kernel persistent /tmp/gr/7b.gguf > $O/profile_7b_persistent_$b.txt 2>&1; echo "7b persistent $b: exit $?"; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
