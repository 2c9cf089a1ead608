#!/usr/bin/env bash
# Session 59, call 3 (long prompt cut to 60 copies, 4,439 tokens, and empty outputs caught: session 60): attn-mma v2 (the query's A fragments split once per split into shared memory, conflict-free;
# dir nm2/ of carry/c11.tar.xz: graphrun, backend_ops) against main 876fa01 (dir base/: graphrun). backend_ops on nm2
# with its NMSE report, the bench A/B -p 512 -n 128 -d 0,4096,8192 -r 2 (arms base nm2 nm2 base nm2 base on the 7B,
# 1.5B and 0.5B presets), greedy tokens of both after short and ~4,500-token prompts.
# usage: bash carry/call11.sh. Carry carry/c11.tar.xz, carry/call11.sh, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
X=$(mktemp -d); xz -dc $C/c11.tar.xz | tar xf - -C $X; chmod +x $X/*/*
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $X/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== backend_ops $(date +%T) ($SECONDS s)"
GRAPHRUN_PARITY_REPORT=$O/backend_ops_nm2.jsonl timeout 60 $X/nm2/backend_ops --ignored --nocapture > $O/backend_ops_nm2.log 2>&1
echo "backend_ops nm2 exit $? ($SECONDS s): $(grep -E '^test result' $O/backend_ops_nm2.log | tail -1)"; pack
grep attention_split_f16 $O/backend_ops_nm2.jsonl | python3 -c "import json,sys; [print(j['model'],j['act'],j['schedule'],j['value'],'%.3e'%j['nmse'],j['band']) for j in map(json.loads,sys.stdin)]" | tee $O/attention_nmse_nm2.txt
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for a in base nm2 nm2 base nm2 base; do
  timeout 45 $X/$a/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${a}_$(date +%s%N).json 2>> $O/bench_${m}_$a.err
done; python3 $C/benchsum2.py $O $m graph base nm2 | tee -a $O/bench_summary.txt; pack; done
echo "=== tokens $(date +%T) ($SECONDS s)"
P4=$(python3 -c "print(' '.join(['def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)'] * 60))")
for m in 0.5b 1.5b 7b; do for a in base nm2; do
  timeout 30 $X/$a/graphrun run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/tok_${m}_short_$a.txt 2>/dev/null
  timeout 40 $X/$a/graphrun run /tmp/gr/$m.gguf -p "$P4" -n 64 --ids --ctx 8192 > $O/tok_${m}_long_$a.txt 2>/dev/null
done; for t in short long; do [ -s $O/tok_${m}_${t}_base.txt ] && cmp -s $O/tok_${m}_${t}_base.txt $O/tok_${m}_${t}_nm2.txt && echo "$m $t: same tokens" || echo "$m $t: DIFFER (or empty: $(wc -c < $O/tok_${m}_${t}_base.txt) bytes)"; done; done | tee $O/tokens.txt
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
