#!/usr/bin/env bash
# att-spread call (2026-12-05, session 49): main's decode kernels (base: 718f8e7's binary, carry/base.tar.xz dir b/; main
# db855a2 changed no kernel) vs branch att-spread 53987ee (new, carry/asp.tar.xz dir asp/): decode attention asks for
# more than half an SM's shared memory so its CTAs spread one per SM; GRAPHRUN_ATT_SPREAD=0 (arm `off`) is new's binary
# without it. (1) greedy tokens; (2) bench A/B interleaved.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in base asp; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done && chmod +x /tmp/x/*/*
B=/tmp/x/b; N=/tmp/x/asp
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $B/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens, a 600-token prompt then 32 $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
for m in 0.5b 1.5b 7b; do
  timeout 60 $B/graphrun run /tmp/gr/$m.gguf -p "$P" -n 32 --ids > $O/run_${m}_base.txt 2> $O/run_${m}_base.err
  timeout 60 $N/graphrun run /tmp/gr/$m.gguf -p "$P" -n 32 --ids > $O/run_${m}_new.txt 2> $O/run_${m}_new.err
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m: tokens equal ($(wc -c < $O/run_${m}_new.txt) bytes)" || echo "$m: TOKENS DIFFER"; done | tee $O/tokens.txt; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do A="base new off off new base"; [ $m = 0.5b ] && A="base new off"; for b in $A; do
  X=$N/graphrun; [ $b = base ] && X=$B/graphrun; E=1; [ $b = off ] && E=0
  GRAPHRUN_ATT_SPREAD=$E timeout 60 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new off | tee -a $O/bench_summary.txt; pack; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
