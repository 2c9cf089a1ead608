#!/usr/bin/env bash
# att-spread call 8 (2026-12-05, session 50). Binaries: base = main 11e0f98 (carry/base.tar.xz dir b/), new = branch
# att-spread 272a07f (carry/asp.tar.xz dir asp/; 2de39e3 = 53987ee rebased on 11e0f98, plus GRAPHRUN_ATT_SPLITS=k,
# an A/B-only knob sizing decode attention's splits for k CTAs per SM), ast = the same branch built with
# GRAPHRUN_STAMPS=1 (carry/ast.tar.xz dir ast/). Arms on new's binary: new (spread on), off (GRAPHRUN_ATT_SPREAD=0,
# must equal base), s2 (ATT_SPLITS=2, spread off), s2sp (ATT_SPLITS=2, spread on).
# (1) greedy tokens base/new/s2; (2) timelines at --prompt 4096 (SM count and span of attention) per arm;
# (3) bench A/B interleaved, -d 0,4096,8192.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in base asp ast; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done && chmod +x /tmp/x/*/*
B=/tmp/x/b; N=/tmp/x/asp; S=/tmp/x/ast
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $B/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
# arm -> environment for new's binary
declare -A ENV=([new]="GRAPHRUN_ATT_SPREAD=1" [off]="GRAPHRUN_ATT_SPREAD=0" [s2]="GRAPHRUN_ATT_SPREAD=0 GRAPHRUN_ATT_SPLITS=2" [s2sp]="GRAPHRUN_ATT_SPREAD=1 GRAPHRUN_ATT_SPLITS=2")
echo "=== greedy tokens, a 600-token prompt then 32 $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
for m in 0.5b 1.5b 7b; do
  timeout 60 $B/graphrun run /tmp/gr/$m.gguf -p "$P" -n 32 --ids > $O/run_${m}_base.txt 2> $O/run_${m}_base.err
  for a in new s2; do env ${ENV[$a]} timeout 60 $N/graphrun run /tmp/gr/$m.gguf -p "$P" -n 32 --ids > $O/run_${m}_$a.txt 2> $O/run_${m}_$a.err
    cmp -s $O/run_${m}_base.txt $O/run_${m}_$a.txt && echo "$m $a: tokens equal to base ($(wc -c < $O/run_${m}_$a.txt) bytes)" || echo "$m $a: TOKENS DIFFER"; done; done | tee $O/tokens.txt; pack
echo "=== timelines at --prompt 4096 $(date +%T) ($SECONDS s)"
for m in 7b 1.5b; do for a in new off s2 s2sp; do
  env ${ENV[$a]} timeout 90 $S/graphrun dump --stage fused --timeline --prompt 4096 /tmp/gr/$m.gguf > $O/timeline_${m}_$a.txt 2>> $O/timeline.err; echo "$m $a: exit $?"
  head -1 $O/timeline_${m}_$a.txt; grep -A11 "^per kernel" $O/timeline_${m}_$a.txt | grep -i "kernel\|atten" | cut -c1-100; done; done; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do A="base new off s2 s2sp s2sp s2 off new base"; [ $m = 0.5b ] && A="base new off s2 s2sp"; for b in $A; do
  if [ $b = base ]; then X=$B/graphrun; E=""; else X=$N/graphrun; E=${ENV[$b]}; fi
  env $E timeout 90 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new off s2 s2sp | tee -a $O/bench_summary.txt; pack; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
