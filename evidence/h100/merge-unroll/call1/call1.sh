#!/usr/bin/env bash
# merge-unroll call 1: prep_merge loads the partials after its first 32 in chunks of 32 issued together (branch
# merge-unroll, carry/mu.tar.xz, dir mu/: graphrun, backend_ops) against main (carry/mp.tar.xz, dir mp/: the
# merge-prep build, c7bc052 = main's code). Same sums in the same order: tokens must be equal.
# (1) greedy tokens 1.5B/7B, short and 4,979-token prompts; (2) bench A/B base new new base, -d 0,4096,8192;
# (3) backend_ops. Carry exactly carry/mp.tar.xz, carry/mu.tar.xz, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in mp mu; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
declare -A X=([base]=/tmp/x/mp/graphrun [new]=/tmp/x/mu/graphrun)
mkdir -p /tmp/gr; for p in 1.5b 7b; do ${X[base]} synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 1.5b 7b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base new; do timeout 60 ${X[$b]} run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_new.txt && [ -s $O/run_${m}_${L}_new.txt ] && echo "$m $L: tokens equal ($(wc -w < $O/run_${m}_${L}_new.txt))" || echo "$m $L: TOKENS DIFFER"
done; done | tee $O/tokens.txt; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 1.5b 7b; do for b in base new new base; do
  timeout 60 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new | grep tg | tee -a $O/bench_summary.txt; pack; done
timeout 40 /tmp/x/mu/backend_ops --ignored --nocapture > $O/backend_ops.log 2>&1; echo "backend_ops: exit $?"; grep -E "test result" $O/backend_ops.log
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
