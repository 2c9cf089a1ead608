#!/usr/bin/env bash
# Session 62, call 18: qkv-order restricted to the k-quants (ordk: Q4_K/Q5_K/Q6_K rows loaded both before
# either is summed; Q4_0/Q5_0/Q8_0 keep main's order) against main d14e417 (base) and qkv-order (ord).
# In order (the device time left was short, so the suites first): backend_ops and gpu_persistent on ordk; greedy
# tokens after a short and a 4,439-token prompt; bench -p 512 -n 128 -d 0,4096 -r 2, arms base ord ordk ordk ord
# base on the 7B, 0.5B and 1.5B presets.
# usage: bash carry/call18.sh. Carry carry/c18.tar.xz, carry/call18.sh, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
X=$(mktemp -d); xz -dc $C/c18.tar.xz | tar xf - -C $X; chmod +x $X/*/*
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $X/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== backend_ops $(date +%T) ($SECONDS s)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops_ordk.jsonl timeout 60 $X/ordk/backend_ops --ignored --nocapture > $O/backend_ops_ordk.log 2>&1
echo "backend_ops ordk exit $? ($SECONDS s): $(grep -E '^test result' $O/backend_ops_ordk.log | tail -1)"; xz -f $O/backend_ops_ordk.jsonl; pack
echo "=== gpu_persistent $(date +%T) ($SECONDS s)"
timeout 90 $X/ordk/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent_ordk.log 2>&1; echo "gpu_persistent ordk exit $? ($SECONDS s): $(grep -E '^test result' $O/gpu_persistent_ordk.log | tail -1)"
echo "=== tokens $(date +%T) ($SECONDS s)"
P4=$(python3 -c "print(' '.join(['def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)'] * 60))")
for m in 0.5b 1.5b 7b; do for a in base ordk; do
  timeout 30 $X/$a/graphrun run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/tok_${m}_short_$a.txt 2> $O/tok_${m}_short_$a.err
  timeout 40 $X/$a/graphrun run /tmp/gr/$m.gguf -p "$P4" -n 64 --ids --ctx 8192 > $O/tok_${m}_long_$a.txt 2> $O/tok_${m}_long_$a.err
done; for t in short long; do
  [ -s $O/tok_${m}_${t}_base.txt ] && cmp -s $O/tok_${m}_${t}_base.txt $O/tok_${m}_${t}_ordk.txt && echo "$m $t ordk: same tokens as base" || echo "$m $t ordk: DIFFER or empty ($(wc -c < $O/tok_${m}_${t}_base.txt) bytes base, $(wc -c < $O/tok_${m}_${t}_ordk.txt) ordk)"
done; done | tee $O/tokens.txt; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 0.5b 1.5b; do for a in base ord ordk ordk ord base; do
  timeout 45 $X/$a/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${a}_$(date +%s%N).json 2>> $O/bench_${m}_$a.err
done; python3 $C/benchsum2.py $O $m graph base ord ordk | tee -a $O/bench_summary.txt; pack; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
