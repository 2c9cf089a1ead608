#!/usr/bin/env bash
# wld call 1: the decode matvecs' Q4_K/Q5_K weight loads with a cache hint (branch wld, kernels/quant.cuh ldw16_if):
# w1 = __ldcs (ld.global.cs, streaming), w2 = __ldcg (ld.global.cg, L2 only), against main (carry/mu.tar.xz, dir mu/:
# the merge-unroll build, 1020b5c = main's code). The same bytes loaded: tokens must be equal.
# (1) greedy tokens; (2) bench A/B, arms interleaved.
# Carry exactly carry/mu.tar.xz, carry/wl.tar.xz (dirs w1/, w2/), carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in mu wl; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
declare -A X=([base]=/tmp/x/mu/graphrun [w1]=/tmp/x/w1/graphrun [w2]=/tmp/x/w2/graphrun)
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do ${X[base]} synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 7b 1.5b 0.5b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base w1 w2; do timeout 60 ${X[$b]} run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  for b in w1 w2; do cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_$b.txt && [ -s $O/run_${m}_${L}_$b.txt ] && echo "$m $L $b: tokens equal base's ($(wc -w < $O/run_${m}_${L}_$b.txt))" || echo "$m $L $b: TOKENS DIFFER"; done
done; done | tee $O/tokens.txt; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base w1 w2 w2 w1 base base w1 w2; do
  timeout 60 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base w1 w2 | grep tg | tee -a $O/bench_summary.txt; pack; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
