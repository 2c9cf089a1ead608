#!/usr/bin/env bash
# prefetch-l2 call 1: the one-wave decode matvecs' L2 prefetch before the wait, allowed up to a fraction f of the L2
# (GRAPHRUN_PREFETCH_L2=f; main: 0.5). On the H100's 50 MB L2 only the 7B's downs change: f = 0.8 lets the Q4_K
# downs (38.2 MB) prefetch, f = 1.2 the Q6_K downs (55.7 MB) too. One binary, main b6c2164 + the knob (carry/pf.tar.xz,
# dir pf/: graphrun, gpu_e2e). Prefetching changes no value: tokens must be equal.
# Carry exactly carry/pf.tar.xz, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap,memory.total --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && xz -dc $C/pf.tar.xz | tar xf - -C /tmp/x; chmod +x /tmp/x/*/*
G=/tmp/x/pf/graphrun
mkdir -p /tmp/gr; $G synth --preset 7b -o /tmp/gr/7b.gguf 2>&1 | tail -1
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for f in 0.5 0.8 1.2; do GRAPHRUN_PREFETCH_L2=$f timeout 60 $G run /tmp/gr/7b.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_7b_${L}_f$f.txt 2> $O/run_7b_${L}_f$f.err; done
  for f in 0.8 1.2; do cmp -s $O/run_7b_${L}_f0.5.txt $O/run_7b_${L}_f$f.txt && [ -s $O/run_7b_${L}_f$f.txt ] && echo "7b $L f$f: tokens equal f0.5's" || echo "7b $L f$f: TOKENS DIFFER"; done
done | tee $O/tokens.txt; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for f in 0.5 0.8 1.2 1.2 0.8 0.5 0.5 0.8 1.2 1.2 0.8 0.5; do
  GRAPHRUN_PREFETCH_L2=$f timeout 60 $G bench /tmp/gr/7b.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_7b_graph_f${f}_$(date +%s%N).json 2>>$O/bench_7b_graph_f$f.err; done
python3 $C/benchsum2.py $O 7b graph f0.5 f0.8 f1.2 | grep tg | tee -a $O/bench_summary.txt
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
