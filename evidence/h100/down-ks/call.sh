#!/usr/bin/env bash
# down-ks call (2026-12-05, session 48): main 67ff4fc (base, code of d2724bf; suites.tar.xz dir s/) vs branch down-ks d31f54a (new, dks.tar.xz
# dir d/: graphrun, gpu_batch, gpu_e2e). The change is host geometry only (matvec_grid: 7B Q6_K ffn_down split 8).
# (1) greedy tokens (graph kernel); (2) trace new vs base; (3) fused profile 7b; (4) bench A/B interleaved;
# (5) gpu_batch on new; (6) gpu_e2e 7b on new with the time left. $OUT/r.tgz re-packed after each step.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && xz -dc carry/suites.tar.xz | tar xf - -C /tmp/x && xz -dc carry/dks.tar.xz | tar xf - -C /tmp/x && chmod +x /tmp/x/*/*
B=/tmp/x/s; N=/tmp/x/d
declare -A X=([base]=$B/graphrun [new]=$N/graphrun)
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $B/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T)"
for m in 1.5b 7b; do for b in base new; do
  timeout 60 ${X[$b]} run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids --decode-kernel graph > $O/run_${m}_$b.txt 2> $O/run_${m}_$b.err; done
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m: tokens equal" || echo "$m: TOKENS DIFFER"; done | tee $O/tokens.txt; pack
echo "=== trace new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 7b; do for b in base new; do
  timeout 60 ${X[$b]} trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.23.*,output*,result*' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  for c in trace_same_semantics trace_exact; do $N/graphrun diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract $c > $O/trace_new_vs_base_${m}_$c.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_${m}_$c.txt
  echo "$m $c: $(grep -E "verdict" $O/trace_new_vs_base_${m}_$c.txt | cut -c1-120)"; done; done; pack
echo "=== profile $(date +%T)"
for b in base new new base; do timeout 60 ${X[$b]} dump --stage fused --profile /tmp/gr/7b.gguf > $O/profile_7b_${b}_$SECONDS.txt 2>&1; echo "7b $b: exit $?"; done
timeout 60 $B/graphrun dump --stage fused --profile /tmp/gr/1.5b.gguf > $O/profile_1.5b_base.txt 2>&1; echo "1.5b base: exit $?"; pack
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b; do S="base new new base"; [ $m = 7b ] && S="base new new base base new new base"; for b in $S; do
  timeout 100 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new | tee -a $O/bench_summary.txt; pack; done
echo "=== gpu_batch on new $(date +%T)"
timeout 100 $N/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep "test result" $O/gpu_batch.log; pack
L=$((210 - SECONDS)); if [ $L -gt 30 ]; then export GRAPHRUN_BIN=$N/graphrun
GRAPHRUN_E2E_PRESETS=7b GRAPHRUN_E2E_LENGTHS=1,129 GRAPHRUN_E2E_REPORT=$O/gpu_e2e.jsonl timeout $L $N/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1
echo "gpu_e2e: exit $? ($SECONDS s)"; grep "test result" $O/gpu_e2e.log; rm -f $O/gpu_e2e.jsonl; fi
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
