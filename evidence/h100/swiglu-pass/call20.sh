#!/usr/bin/env bash
# Session 63: the Q4_K SwiGLU decode matvec (gate+up) in two passes over the units, rows 0-1 then 2-3, so each
# unit's four loads go out together at 80 registers (branch swiglu-pass, dir sp/ of carry/c20.tar.xz: graphrun,
# gpu_persistent, backend_ops) against main (dir base/: the build of c4588a2's tree, main's kernels).
# In order: bench -p 512 -n 128 -d 0,4096 -r 2, arms base sp sp base base sp (7B, 1.5B, 0.5B presets); the 7B's
# fused profile per arm; greedy tokens after a short and a 4,439-token prompt; backend_ops and gpu_persistent on sp.
# About 200 s.
# usage: bash carry/call20.sh. Carry carry/c20.tar.xz, carry/call20.sh, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
X=$(mktemp -d); xz -dc $C/c20.tar.xz | tar xf - -C $X; chmod +x $X/*/*
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $X/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for a in base sp sp base base sp; do
  timeout 45 $X/$a/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${a}_$(date +%s%N).json 2>> $O/bench_${m}_$a.err
done; python3 $C/benchsum2.py $O $m graph base sp | tee -a $O/bench_summary.txt; pack; done
echo "=== profiles $(date +%T) ($SECONDS s)"
for a in base sp; do timeout 40 $X/$a/graphrun dump /tmp/gr/7b.gguf --stage fused --profile > $O/profile_7b_$a.txt 2> $O/profile_7b_$a.err; echo "profile $a exit $?: $(grep 'total kernel time' $O/profile_7b_$a.txt)"; done; pack
echo "=== tokens $(date +%T) ($SECONDS s)"
P4=$(python3 -c "print(' '.join(['def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)'] * 60))")
for m in 0.5b 1.5b 7b; do for a in base sp; do
  timeout 30 $X/$a/graphrun run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/tok_${m}_short_$a.txt 2> $O/tok_${m}_short_$a.err
  timeout 40 $X/$a/graphrun run /tmp/gr/$m.gguf -p "$P4" -n 64 --ids --ctx 8192 > $O/tok_${m}_long_$a.txt 2> $O/tok_${m}_long_$a.err
done; for t in short long; do
  [ -s $O/tok_${m}_${t}_base.txt ] && cmp -s $O/tok_${m}_${t}_base.txt $O/tok_${m}_${t}_sp.txt && echo "$m $t sp: same tokens as base" || echo "$m $t sp: DIFFER or empty ($(wc -c < $O/tok_${m}_${t}_base.txt) bytes base, $(wc -c < $O/tok_${m}_${t}_sp.txt) sp)"
done; done | tee $O/tokens.txt; pack
echo "=== backend_ops $(date +%T) ($SECONDS s)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops_sp.jsonl timeout 60 $X/sp/backend_ops --ignored --nocapture > $O/backend_ops_sp.log 2>&1
echo "backend_ops sp exit $? ($SECONDS s): $(grep -E '^test result' $O/backend_ops_sp.log | tail -1)"; xz -f $O/backend_ops_sp.jsonl
echo "=== gpu_persistent $(date +%T) ($SECONDS s)"
timeout 120 $X/sp/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent_sp.log 2>&1; echo "gpu_persistent sp exit $? ($SECONDS s): $(grep -E '^test result' $O/gpu_persistent_sp.log | tail -1)"
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
