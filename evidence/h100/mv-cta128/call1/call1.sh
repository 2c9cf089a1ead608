#!/usr/bin/env bash
# mv-cta128 call 1: one-wave decode matvecs of split <= 4 (not SwiGLU) launched in CTAs of 128 threads, twice as many,
# so each SM gets an even share (the 7B's downs: 896 CTAs of 4 rows, 6 or 7 an SM, where main has 448 of 8 rows, 3 or
# 4 an SM); the same split, so the same bits. Branch mv-cta128 (carry/mh.tar.xz, dir mh/: graphrun, gpu_e2e); arm
# `off` = the same binary with GRAPHRUN_MV_HALF=0 (main's grids: the kernel change alone); base = main's code
# (carry/mu.tar.xz, dir mu/). (1) greedy tokens, which must be equal; (2) bench, interleaved; (3) gpu_e2e on half.
# Carry exactly carry/mu.tar.xz, carry/mh.tar.xz, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in mu mh; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
declare -A A=([base]="/tmp/x/mu/graphrun GRAPHRUN_MV_HALF=1" [half]="/tmp/x/mh/graphrun GRAPHRUN_MV_HALF=1" [off]="/tmp/x/mh/graphrun GRAPHRUN_MV_HALF=0")
arm() { local a=$1; shift; set -- ${A[$a]} "$@"; local bin=$1 env=$2; shift 2; env $env timeout 60 $bin "$@"; }
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do /tmp/x/mu/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 7b 1.5b 0.5b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base half off; do arm $b run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  for b in half off; do cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_$b.txt && [ -s $O/run_${m}_${L}_$b.txt ] && echo "$m $L $b: tokens equal base's ($(wc -w < $O/run_${m}_${L}_$b.txt))" || echo "$m $L $b: TOKENS DIFFER"; done
done; done | tee $O/tokens.txt; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base half off off half base base half off; do
  arm $b bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base half off | grep tg | tee -a $O/bench_summary.txt; pack; done
echo "=== gpu_e2e synthetic on half $(date +%T) ($SECONDS s)"
GRAPHRUN_E2E_PRESETS=tiny,0.5b,1.5b GRAPHRUN_E2E_LENGTHS=1,129 timeout 120 /tmp/x/mh/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $?"; grep -E "test result|FAIL" $O/gpu_e2e.log | tail -5
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
