#!/usr/bin/env bash
# prefetch-head call 1: a one-wave decode matvec whose weights exceed half the L2 (on the H100: the 7B's Q6_K and
# Q4_K down) prefetches the first N bytes of each row of its first tile into L2 before its wait
# (GRAPHRUN_PREFETCH_HEAD=N, MatvecArgs.prefetch = N; branch prefetch-head, carry/ph.tar.xz, dir ph/). N = 0 is
# main's behaviour (no prefetch for those). Prefetches change no result: tokens equal.
# (1) greedy 7B tokens per arm, short and 4,979-token prompts; (2) bench 7B, arms 0 2048 4096 8192 8192 4096
# 2048 0, -d 0,4096. Carry exactly carry/ph.tar.xz, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && xz -dc $C/ph.tar.xz | tar xf - -C /tmp/x && chmod +x /tmp/x/*/*
G=/tmp/x/ph/graphrun
mkdir -p /tmp/gr; $G synth --preset 7b -o /tmp/gr/7b.gguf 2>&1 | tail -1
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for h in 0 4096; do GRAPHRUN_PREFETCH_HEAD=$h timeout 60 $G run /tmp/gr/7b.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_7b_${L}_h$h.txt 2> $O/run_7b_${L}_h$h.err; done
  cmp -s $O/run_7b_${L}_h0.txt $O/run_7b_${L}_h4096.txt && [ -s $O/run_7b_${L}_h4096.txt ] && echo "7b $L: tokens equal ($(wc -w < $O/run_7b_${L}_h4096.txt))" || echo "7b $L: TOKENS DIFFER"
done | tee $O/tokens.txt; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for h in 0 2048 4096 8192 8192 4096 2048 0; do
  GRAPHRUN_PREFETCH_HEAD=$h timeout 60 $G bench /tmp/gr/7b.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_7b_graph_h${h}_$(date +%s%N).json 2>>$O/bench_7b_graph_h$h.err; done
python3 $C/benchsum2.py $O 7b graph h0 h2048 h4096 h8192 | grep tg | tee -a $O/bench_summary.txt
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
