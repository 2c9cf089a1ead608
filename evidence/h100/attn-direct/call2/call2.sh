#!/usr/bin/env bash
# attn-direct call (2026-12-05, session 48): main 67ff4fc (base, suites.tar.xz dir s/) vs branch attn-direct 9e8bda6
# (new, att.tar.xz dir a/: graphrun, gpu_batch, backend_ops). The change: decode attention's lone active split (npos <= 64)
# writes the output itself with the merge's arithmetic (same bits). (1) greedy tokens 0.5b/1.5b/7b, crossing position 64;
# (2) trace_exact new vs base at short context; (3) bench A/B interleaved; (4) backend_ops; (5) gpu_batch with the time left.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && xz -dc carry/suites.tar.xz | tar xf - -C /tmp/x && xz -dc carry/att2.tar.xz | tar xf - -C /tmp/x && chmod +x /tmp/x/*/*
B=/tmp/x/s; N=/tmp/x/a
declare -A X=([base]=$B/graphrun [new]=$N/graphrun)
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $B/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T)"
for m in 0.5b 1.5b 7b; do for b in base new; do
  timeout 60 ${X[$b]} run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 96 --ids --decode-kernel graph > $O/run_${m}_$b.txt 2> $O/run_${m}_$b.err; done
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m: tokens equal ($(wc -l < $O/run_${m}_new.txt) lines)" || echo "$m: TOKENS DIFFER"; done | tee $O/tokens.txt; pack
echo "=== trace new vs base, short context $(date +%T)"
for m in 1.5b; do for b in base new; do
  timeout 60 ${X[$b]} trace /tmp/gr/$m.gguf -p "def f(x):" --gpu --decode 4 --nodes 'blk.0.*,blk.13.*,blk.23.*,output*,result*' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  $N/graphrun diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_${m}_trace_exact.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_${m}_trace_exact.txt
  echo "$m trace_exact: $(grep -E "verdict" $O/trace_new_vs_base_${m}_trace_exact.txt | cut -c1-120)"; done; pack
echo "=== bench A/B $(date +%T)"
for m in 0.5b 1.5b 7b; do for b in base new new base; do
  timeout 100 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new | tee -a $O/bench_summary.txt; pack; done
echo "=== backend_ops on new $(date +%T)"
timeout 90 $N/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1
echo "backend_ops: exit $? ($SECONDS s)"; grep "test result" $O/backend_ops.log; pack
L=$((150 - SECONDS)); if [ $L -gt 20 ]; then
timeout $L $N/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep "test result" $O/gpu_batch.log; fi
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
