#!/usr/bin/env bash
# mv-balance call 1: decode matvec geometry that balances the busiest SM (src/exec/cuda/geometry.rs, balanced_split).
# One binary, the working tree on main 0657972 (carry/mb.tar.xz, dir mb/: graphrun; dir mbs/: the same, stamped).
# Arm base = GRAPHRUN_MV_BALANCE=0: main's geometry, main's code path (the tree carry limit left no room for a
# second build of main).
# Arms on mb: new (default: the 7B's downs at split 8 on 528 CTAs), cap (GRAPHRUN_MV_BALANCE=cap: also every
# multi-wave matvec grid capped at one wave, same split, so the same bits), waves (=waves: split 8 on 896 CTAs,
# the rejected down-ks geometry), off (=0: main's geometry, in the stamped build only).
# (1) greedy tokens; (2) trace 7B new vs base; (3) bench A/B interleaved; (4) timelines.
# Carry exactly carry/mb.tar.xz, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in mb; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
N=/tmp/x/mb/graphrun S=/tmp/x/mbs/graphrun
# arm -> "binary env"
declare -A A=([base]="$N GRAPHRUN_MV_BALANCE=0" [new]="$N GRAPHRUN_MV_BALANCE=1" [cap]="$N GRAPHRUN_MV_BALANCE=cap" [waves]="$N GRAPHRUN_MV_BALANCE=waves")
arm() { local a=$1; shift; set -- ${A[$a]} "$@"; local bin=$1 env=$2; shift 2; env $env timeout 60 $bin "$@"; }
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $N synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 7b 1.5b 0.5b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base new cap; do arm $b run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  for b in new cap; do cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_$b.txt && [ -s $O/run_${m}_${L}_$b.txt ] && echo "$m $L $b: tokens equal base's ($(wc -w < $O/run_${m}_${L}_$b.txt))" || echo "$m $L $b: TOKENS DIFFER"; done
done; done | tee $O/tokens.txt; pack
echo "=== trace 7B new vs base $(date +%T) ($SECONDS s)"
for b in base new; do arm $b trace /tmp/gr/7b.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.23.*,output*,result*' -o /tmp/tr_7b_$b > /dev/null 2>&1; done
for c in trace_same_semantics trace_exact; do $N diff /tmp/tr_7b_new /tmp/tr_7b_base --contract $c > $O/trace_new_vs_base_7b_$c.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_7b_$c.txt
  echo "7b $c: $(grep -E "verdict" $O/trace_new_vs_base_7b_$c.txt | cut -c1-140)"; done; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for b in base new cap waves waves cap new base base new cap waves; do
  arm $b bench /tmp/gr/7b.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_7b_graph_${b}_$(date +%s%N).json 2>>$O/bench_7b_graph_$b.err; done
python3 $C/benchsum2.py $O 7b graph base new cap waves | grep tg | tee -a $O/bench_summary.txt; pack
for m in 1.5b 0.5b; do for b in base cap cap base; do
  arm $b bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base cap | grep tg | tee -a $O/bench_summary.txt; done; pack
echo "=== timelines $(date +%T) ($SECONDS s)"
for e in 0 1 cap waves; do
  GRAPHRUN_MV_BALANCE=$e timeout 60 $S dump --stage fused --timeline --prompt 512 /tmp/gr/7b.gguf > $O/timeline_7b_$e.txt 2>> $O/timeline.err
  echo "7b $e: exit $?"; head -1 $O/timeline_7b_$e.txt; grep -A14 "^per kernel" $O/timeline_7b_$e.txt | cut -c1-110
done; pack
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
