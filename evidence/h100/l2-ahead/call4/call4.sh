#!/usr/bin/env bash
# l2-ahead call (2026-12-05, session 49): main 718f8e7 (base, carry/base.tar.xz dir b/) vs branch l2-ahead 78fb381
# 56da4c0 (new, carry/ahead.tar.xz dir n/: graphrun, backend_ops) — the single-row Q/K/V kernel brings the layer's later
# weights (attn_out, gate/up, down; half the L2) into L2 before its grid wait (arm `new`), or after its items
# (GRAPHRUN_L2_AHEAD=late, arm `late`); GRAPHRUN_L2_AHEAD=0 turns it off (arm `off`).
# (1) greedy tokens; (2) trace_exact new vs base; (3) backend_ops; (4) bench A/B base/new/off interleaved;
# (5) launch timelines of l2-ahead + the timeline tool (carry/sa.tar.xz dir sa/, GRAPHRUN_STAMPS=1), ahead on and off.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in base ahead sa; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done && chmod +x /tmp/x/*/*
B=/tmp/x/b; N=/tmp/x/n; SA=/tmp/x/sa
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $B/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
for m in 0.5b 1.5b 7b; do
  timeout 60 $B/graphrun run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 96 --ids > $O/run_${m}_base.txt 2> $O/run_${m}_base.err
  timeout 60 $N/graphrun run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 96 --ids > $O/run_${m}_new.txt 2> $O/run_${m}_new.err
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m: tokens equal ($(wc -c < $O/run_${m}_new.txt) bytes)" || echo "$m: TOKENS DIFFER"; done | tee $O/tokens.txt; pack
echo "=== trace new vs base $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 1.5b 7b; do
  timeout 60 $B/graphrun trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_${m}_base > /dev/null 2>&1
  timeout 60 $N/graphrun trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_${m}_new > /dev/null 2>&1
  $N/graphrun diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_${m}_trace_exact.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_${m}_trace_exact.txt
  echo "$m trace_exact: $(grep -E "compared|verdict|exit" $O/trace_new_vs_base_${m}_trace_exact.txt | tr '\n' ' ' | cut -c1-200)"; done; pack
echo "=== backend_ops on new $(date +%T) ($SECONDS s)"
timeout 90 $N/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1
echo "backend_ops: exit $? ($SECONDS s)"; grep "test result" $O/backend_ops.log; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 1.5b 7b 0.5b; do A="base new late off off late new base"; [ $m = 0.5b ] && A="base new late off"; for b in $A; do
  X=$N/graphrun; [ $b = base ] && X=$B/graphrun; E=1; [ $b = off ] && E=0; [ $b = late ] && E=late
  GRAPHRUN_L2_AHEAD=$E timeout 100 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new late off | tee -a $O/bench_summary.txt; pack; done
echo "=== timelines, ahead on and off $(date +%T) ($SECONDS s)"
for m in 1.5b 7b; do for e in 1 late 0; do
  GRAPHRUN_L2_AHEAD=$e timeout 60 $SA/graphrun dump --stage fused --timeline /tmp/gr/$m.gguf > $O/timeline_${m}_ahead$e.txt 2>> $O/timeline.err; echo "$m ahead=$e: exit $?"
  head -1 $O/timeline_${m}_ahead$e.txt; grep -A12 "^per kernel" $O/timeline_${m}_ahead$e.txt | cut -c1-80; done; done; pack
for m in 1.5b 7b; do GRAPHRUN_L2_AHEAD=1 timeout 60 $SA/graphrun dump --stage fused --timeline --format json /tmp/gr/$m.gguf 2>> $O/timeline.err | gzip > $O/timeline_${m}_ahead1.json.gz; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
