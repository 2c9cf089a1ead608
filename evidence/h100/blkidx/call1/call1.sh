#!/usr/bin/env bash
# blkidx call 1: matvec_tile's q8 rows found by their block's index in the matrix (kernels/matvec.cuh; `blkidx` of
# ../../q6-plane/, where it took the 7B's Q4_K down 24.5 -> 19.5 us and its Q6_K down 32.7 -> 30.7 us in a harness),
# the same bytes and arithmetic, so the same bits. base = main 7a1c85b's code (carry/ch.tar.xz, dir ch/); new = the
# change (carry/bi.tar.xz, dir bi/: graphrun, gpu_e2e, backend_ops, gpu_persistent).
# (1) greedy tokens equal; (2) bench interleaved; (3) backend_ops, a short gpu_e2e, gpu_persistent (capped at 45 s).
# Carry exactly carry/ch.tar.xz, carry/bi.tar.xz, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in ch bi; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
declare -A A=([base]=/tmp/x/ch/graphrun [new]=/tmp/x/bi/graphrun)
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do /tmp/x/ch/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 7b 1.5b 0.5b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base new; do timeout 60 ${A[$b]} run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_new.txt && [ -s $O/run_${m}_${L}_new.txt ] && echo "$m $L: tokens equal ($(wc -w < $O/run_${m}_${L}_new.txt))" || echo "$m $L: TOKENS DIFFER"
done; done | tee $O/tokens.txt; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base new new base base new; do
  timeout 60 ${A[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new | grep tg | tee -a $O/bench_summary.txt; pack; done
echo "=== suites $(date +%T) ($SECONDS s)"
timeout 60 /tmp/x/bi/backend_ops --ignored --nocapture > $O/backend_ops.log 2>&1; echo "backend_ops exit $?: $(grep -E '^test result' $O/backend_ops.log | tail -1)"
pack
GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b,1.5b GRAPHRUN_E2E_LENGTHS=1,129 timeout 70 /tmp/x/bi/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $?"; grep -E "test result|FAIL" $O/gpu_e2e.log | tail -3; grep -c "worst" $O/gpu_e2e.log
pack
timeout 45 /tmp/x/bi/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?: $(grep -E '^test result' $O/gpu_persistent.log | tail -1)"
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
