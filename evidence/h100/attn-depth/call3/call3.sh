#!/usr/bin/env bash
# attn-depth call 3 (prepared 2026-12-05, session 50; not yet run): branch att-pre2 17f4bb4 (carry/p2.tar.xz dir p2/:
# graphrun) against main 89d412b (carry/m.tar.xz dir m/), after call 2's attnbench3 has shown whether `pre2` is ahead.
# (1) greedy tokens (the same bits are expected); (2) bench A/B interleaved at depths 0, 4,096 and 8,192.
# Carry: carry/m.tar.xz carry/p2.tar.xz carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in m p2; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done && chmod +x /tmp/x/*/*
B=/tmp/x/m; N=/tmp/x/p2
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $B/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens, a 600-token prompt then 32, and a 5,000-token one then 16 $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 0.5b 1.5b 7b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  timeout 90 $B/graphrun run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_base.txt 2> $O/run_${m}_${L}_base.err
  timeout 90 $N/graphrun run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_new.txt 2> $O/run_${m}_${L}_new.err
  cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_new.txt && echo "$m $L: tokens equal ($(wc -c < $O/run_${m}_${L}_new.txt) bytes)" || echo "$m $L: TOKENS DIFFER"; done; done | tee $O/tokens.txt; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base new new base base new; do
  X=$N/graphrun; [ $b = base ] && X=$B/graphrun
  timeout 90 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new | tee -a $O/bench_summary.txt; pack; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
