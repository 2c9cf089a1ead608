#!/usr/bin/env bash
# chain call 1: the pipelined decode loop (src/exec/cuda/chain.rs: step i + 1 queued before step i's token is read).
# Binaries: base = main 235aaaf's code (carry/mu.tar.xz, dir mu/); the working tree with the chain (carry/ch.tar.xz,
# dir ch/: graphrun, gpu_chain, gpu_sample, gpu_batch, gpu_e2e). Arms: base; chain (GRAPHRUN_CHAIN=1, the default);
# step (the same binary with GRAPHRUN_CHAIN=0: step by step, its argmax still feeding the next step's input).
# (1) gpu_chain, gpu_sample, gpu_batch; (2) greedy and sampled tokens through `run`, equal in every arm; (3) bench,
# interleaved; (4) a short gpu_e2e. Carry exactly carry/mu.tar.xz, carry/ch.tar.xz, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in mu ch; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
declare -A A=([base]="/tmp/x/mu/graphrun GRAPHRUN_CHAIN=1" [chain]="/tmp/x/ch/graphrun GRAPHRUN_CHAIN=1" [step]="/tmp/x/ch/graphrun GRAPHRUN_CHAIN=0")
arm() { local a=$1; shift; set -- ${A[$a]} "$@"; local bin=$1 env=$2; shift 2; env $env timeout 60 $bin "$@"; }
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do /tmp/x/mu/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== suites $(date +%T) ($SECONDS s)"
for t in gpu_chain gpu_sample gpu_batch; do timeout 150 /tmp/x/ch/$t --ignored --nocapture > $O/$t.log 2>&1; echo "$t exit $?: $(grep -E '^test result' $O/$t.log | tail -1)"; done | tee $O/suites.txt; pack
echo "=== tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 7b 1.5b 0.5b; do for L in short long sampled; do
  Q="$P"; n=48; X=""; [ $L = long ] && Q="$PL" && n=16; [ $L = sampled ] && X="--temp 0.9 --top-k 40 --seed 5"
  for b in base chain step; do arm $b run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids $X > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  for b in chain step; do cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_$b.txt && [ -s $O/run_${m}_${L}_$b.txt ] && echo "$m $L $b: tokens equal base's ($(wc -w < $O/run_${m}_${L}_$b.txt))" || echo "$m $L $b: TOKENS DIFFER"; done
done; done | tee $O/tokens.txt; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base chain step step chain base base chain step; do
  arm $b bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base chain step | grep tg | tee -a $O/bench_summary.txt; pack; done
echo "=== sampled bench $(date +%T) ($SECONDS s)"
for b in base chain step step chain base; do
  arm $b bench /tmp/gr/1.5b.gguf -p 512 -n 128 -d 0 -r 2 --temp 0.9 --top-k 40 --seed 5 --json > $O/bench_1.5b_sampled_${b}_$(date +%s%N).json 2>>$O/bench_1.5b_sampled_$b.err; done
python3 $C/benchsum2.py $O 1.5b sampled base chain step | grep tg | tee -a $O/bench_summary.txt; pack
echo "=== gpu_e2e synthetic $(date +%T) ($SECONDS s)"
GRAPHRUN_E2E_PRESETS=tiny,0.5b,1.5b GRAPHRUN_E2E_LENGTHS=1,129 timeout 120 /tmp/x/ch/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1; echo "gpu_e2e exit $?"; grep -E "test result|FAIL" $O/gpu_e2e.log | tail -5
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
