#!/usr/bin/env bash
# matvec-lanes call 1 (H200, 2026-12-05). Carry: q6.tar.xz (lanes-q6 643ba7b = lanes-fill with the rule for Q6_K only: graphrun),
# suites.tar.xz (main's code, dc373e9 = d2724bf: graphrun + GPU
# suites), lanes.tar.xz (lanes-fill ec4d342: graphrun, gpu_batch, gpu_persistent, gpu_e2e, backend_ops), mvlanes
# (main's generated matvec kernels, every lane width × K split). (1) mvlanes; (2) greedy tokens base vs new, both
# decode kernels; (3) trace new vs base (trace_same_semantics); (4) bench A/B interleaved base new new base;
# (5) gpu_batch, gpu_persistent, backend_ops on new; (6) gpu_e2e on new with the time left. $OUT/r.tgz re-packed after each step.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && xz -dc carry/suites.tar.xz | tar xf - -C /tmp/x && xz -dc carry/lanes.tar.xz | tar xf - -C /tmp/x && xz -dc carry/q6.tar.xz | tar xf - -C /tmp/x && xz -dc carry/mvlanes.xz > /tmp/x/mvlanes && chmod +x /tmp/x/*/* /tmp/x/mvlanes
B=/tmp/x/s; N=/tmp/x/n; C=$PWD/carry
declare -A X=([base]=$B/graphrun [new]=$N/graphrun [q6]=/tmp/x/q/graphrun)
timeout 90 /tmp/x/mvlanes > $O/mvlanes_1.txt 2>&1; echo "mvlanes: exit $? ($SECONDS s)"; pack
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $B/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens new vs base $(date +%T)"
for m in 0.5b 1.5b 7b; do for k in graph persistent; do for b in base new q6; do
  timeout 60 ${X[$b]} run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids --decode-kernel $k > $O/run_${m}_${k}_$b.txt 2> $O/run_${m}_${k}_$b.err; done
  for b in new q6; do [ -s $O/run_${m}_${k}_$b.txt ] && { cmp -s $O/run_${m}_${k}_base.txt $O/run_${m}_${k}_$b.txt && echo "$m $k $b: tokens equal to base" || echo "$m $k $b: TOKENS DIFFER"; }; done; done; done | tee $O/tokens.txt; pack
echo "=== trace new vs base (graph) $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 0.5b 1.5b 7b; do for b in base new; do
  timeout 60 ${X[$b]} trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.23.*,output*,result*' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  for c in trace_same_semantics trace_exact; do $N/graphrun diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract $c > $O/trace_new_vs_base_${m}_$c.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_${m}_$c.txt
  echo "$m $c: $(grep -E "verdict" $O/trace_new_vs_base_${m}_$c.txt | cut -c1-120)"; done; done; pack
echo "=== bench A/B graph $(date +%T)"
for m in 7b 1.5b 0.5b; do for b in base new q6 q6 new base; do
  timeout 100 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new q6 | tee -a $O/bench_summary.txt; pack; done
echo "=== GPU suites on new $(date +%T)"
timeout 100 $N/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep "test result" $O/gpu_batch.log; pack
timeout 120 $N/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1
echo "gpu_persistent: exit $? ($SECONDS s)"; grep "test result" $O/gpu_persistent.log; pack
timeout 100 $N/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1
echo "backend_ops: exit $? ($SECONDS s)"; grep "test result" $O/backend_ops.log; pack
L=$((470 - SECONDS - 20)); if [ $L -gt 30 ]; then export GRAPHRUN_BIN=$N/graphrun
GRAPHRUN_E2E_PRESETS=0.5b,1.5b,7b GRAPHRUN_E2E_LENGTHS=1,129,513 GRAPHRUN_E2E_REPORT=$O/gpu_e2e.jsonl timeout $L $N/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1
echo "gpu_e2e: exit $? ($SECONDS s)"; grep "test result" $O/gpu_e2e.log; [ -f $O/gpu_e2e.jsonl ] && xz -9 $O/gpu_e2e.jsonl; fi
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
