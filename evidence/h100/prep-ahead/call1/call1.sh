#!/usr/bin/env bash
# prep-ahead call 1 (prepared 2026-12-05, session 50; not yet run). base = main 89d412b (carry/m.tar.xz dir m/:
# graphrun, gpu_batch, gpu_e2e), new = branch prep-ahead (carry/pa.tar.xz dir pa/: graphrun, backend_ops),
# pas = the branch built with GRAPHRUN_STAMPS=1 (carry/pas.tar.xz dir pas/). The branch's `prep` brings its norm
# weights into L1 before its grid wait (same arithmetic, so the same bits). (1) greedy tokens base/new; (2)
# backend_ops on new; (3) bench A/B interleaved; (4) timelines of new (compare the prep rows with
# ../../att-spread/call8/r/timeline_*_new.txt: main's kernels, stamped).
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in m pa pas; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done && chmod +x /tmp/x/*/*
B=/tmp/x/m; N=/tmp/x/pa; S=/tmp/x/pas
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $B/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens, a 600-token prompt then 32 $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
for m in 0.5b 1.5b 7b; do
  timeout 60 $B/graphrun run /tmp/gr/$m.gguf -p "$P" -n 32 --ids > $O/run_${m}_base.txt 2> $O/run_${m}_base.err
  timeout 60 $N/graphrun run /tmp/gr/$m.gguf -p "$P" -n 32 --ids > $O/run_${m}_new.txt 2> $O/run_${m}_new.err
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m: tokens equal ($(wc -c < $O/run_${m}_new.txt) bytes)" || echo "$m: TOKENS DIFFER"; done | tee $O/tokens.txt; pack
echo "=== backend_ops (new) $(date +%T) ($SECONDS s)"
GRAPHRUN_BIN=$N/graphrun timeout 120 $N/backend_ops --ignored --nocapture > $O/backend_ops.log 2>&1; echo "backend_ops: exit $?"; grep -E "test result" $O/backend_ops.log; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 1.5b 0.5b 7b; do for b in base new new base base new; do
  X=$N/graphrun; [ $b = base ] && X=$B/graphrun
  timeout 60 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new | tee -a $O/bench_summary.txt; pack; done
echo "=== timelines (new, stamped) $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do
  timeout 60 $S/graphrun dump --stage fused --timeline --prompt 4096 /tmp/gr/$m.gguf > $O/timeline_${m}.txt 2>> $O/timeline.err; echo "$m: exit $?"
  head -1 $O/timeline_${m}.txt; grep -A12 "^per kernel" $O/timeline_${m}.txt | cut -c1-100; done; pack
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
