#!/usr/bin/env bash
# prep-launch call 1: when `prep`/`prep_merge` let the next kernel start (PrepArgs.launch, branch prep-launch):
# `wait` (0, main's behaviour: at their wait), `input` (once the input row is read: the RMS scale, the merged
# columns), `exit` (at their exit), chosen by GRAPHRUN_PREP_LAUNCH in one binary (carry/pl.tar.xz, dir pl/:
# graphrun, backend_ops). The stamped build of the same commit (carry/pls.tar.xz, dir pls/) times one step.
# (1) greedy tokens per mode (only launch timing changes: equal); (2) bench, modes interleaved
# wait input exit exit input wait, 7B/1.5B/0.5B, -d 0,4096; (3) the launch timeline of each mode, 7B and 1.5B,
# prompt 512; (4) backend_ops. Carry exactly carry/pl.tar.xz, carry/pls.tar.xz, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in pl pls; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
G=/tmp/x/pl/graphrun
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 1.5b 7b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in wait input exit; do GRAPHRUN_PREP_LAUNCH=$b timeout 60 $G run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  for b in input exit; do cmp -s $O/run_${m}_${L}_wait.txt $O/run_${m}_${L}_$b.txt && [ -s $O/run_${m}_${L}_$b.txt ] && echo "$m $L $b: tokens equal ($(wc -w < $O/run_${m}_${L}_$b.txt))" || echo "$m $L $b: TOKENS DIFFER"; done
done; done | tee $O/tokens.txt; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in wait input exit exit input wait; do
  GRAPHRUN_PREP_LAUNCH=$b timeout 60 $G bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph wait input exit | grep tg | tee -a $O/bench_summary.txt; pack; done
echo "=== timelines $(date +%T) ($SECONDS s)"
for m in 7b 1.5b; do for b in wait input exit; do
  GRAPHRUN_PREP_LAUNCH=$b timeout 60 /tmp/x/pls/graphrun dump --stage fused --timeline --prompt 512 /tmp/gr/$m.gguf > $O/timeline_${m}_p512_$b.txt 2>> $O/timeline.err
  echo "$m $b: exit $?"; head -1 $O/timeline_${m}_p512_$b.txt; grep -A12 "^per kernel" $O/timeline_${m}_p512_$b.txt | cut -c1-90
done; pack; done
timeout 40 /tmp/x/pl/backend_ops --ignored --nocapture > $O/backend_ops.log 2>&1; echo "backend_ops: exit $?"; grep -E "test result" $O/backend_ops.log
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
