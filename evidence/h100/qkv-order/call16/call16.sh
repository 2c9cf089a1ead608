#!/usr/bin/env bash
# Session 61, call 16: call12.sh (qkv-order, qkv-l1 against main 9376750) cut to the bench A/B, profiles and tokens, for the device time left.
# Session 60, call 1: the Q/K/V pair dot with both rows' loads first (branch qkv-order d9f08a3, dir ord/ of
# carry/c12.tar.xz: graphrun, backend_ops, gpu_persistent, gpu_e2e, gpu_batch) and that plus each warp's row pair
# prefetched into L1 before the grid wait (branch qkv-l1 25f8733, dir l1/: graphrun) against main's kernels
# (876fa01, dir base/: graphrun; main 160427e's machine code is the same). backend_ops on ord, the bench A/B
# -p 512 -n 128 -d 0,4096 -r 2 (arms base ord l1 l1 ord base on the 7B, 1.5B and 0.5B presets), the 7B's fused
# profile per arm, greedy tokens of the three after a short and a 4,439-token prompt, and on ord gpu_persistent,
# gpu_e2e synthetic (short) and gpu_batch.
# Order: bench, profiles, tokens, backend_ops, suites (the most needed first: each step's results are packed).
# usage: bash carry/call12.sh. Carry carry/c12.tar.xz, carry/call12.sh, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
X=$(mktemp -d); xz -dc $C/c12.tar.xz | tar xf - -C $X; chmod +x $X/*/*
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $X/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for a in base ord l1 l1 ord base; do
  timeout 45 $X/$a/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${a}_$(date +%s%N).json 2>> $O/bench_${m}_$a.err
done; python3 $C/benchsum2.py $O $m graph base ord l1 | tee -a $O/bench_summary.txt; pack; done
echo "=== profiles $(date +%T) ($SECONDS s)"
for a in base ord l1; do timeout 40 $X/$a/graphrun dump /tmp/gr/7b.gguf --stage fused --profile > $O/profile_7b_$a.txt 2> $O/profile_7b_$a.err; echo "profile $a exit $?: $(grep 'total kernel time' $O/profile_7b_$a.txt)"; done; pack
echo "=== tokens $(date +%T) ($SECONDS s)"
P4=$(python3 -c "print(' '.join(['def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)'] * 60))")
for m in 0.5b 1.5b 7b; do for a in base ord l1; do
  timeout 30 $X/$a/graphrun run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/tok_${m}_short_$a.txt 2> $O/tok_${m}_short_$a.err
  timeout 40 $X/$a/graphrun run /tmp/gr/$m.gguf -p "$P4" -n 64 --ids --ctx 8192 > $O/tok_${m}_long_$a.txt 2> $O/tok_${m}_long_$a.err
done; for t in short long; do for a in ord l1; do
  [ -s $O/tok_${m}_${t}_base.txt ] && cmp -s $O/tok_${m}_${t}_base.txt $O/tok_${m}_${t}_$a.txt && echo "$m $t $a: same tokens as base" || echo "$m $t $a: DIFFER or empty ($(wc -c < $O/tok_${m}_${t}_base.txt) bytes base, $(wc -c < $O/tok_${m}_${t}_$a.txt) $a)"
done; done; done | tee $O/tokens.txt; pack
echo "end $(date +%T) ($SECONDS s)"; pack; rm -rf $O
