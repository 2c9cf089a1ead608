#!/usr/bin/env bash
# tail-prep call 2 (call 1 again, after the fix: the TailArgs table uploaded before the capture): a residual matvec's last CTA prepares the next group's RMSNormed q8 input (MatvecArgs.w2 = TailArgs,
# branch tail-prep) instead of a `prep` launch. `base` = main f099c24's code (carry/mu.tar.xz, dir mu/: the
# merge-unroll build, whose code main now is), `new` = the branch (carry/tp.tar.xz, dir tp/: graphrun, backend_ops,
# gpu_e2e), `off` = the branch's binary with GRAPHRUN_TAIL_PREP=0. Same code over the same row: tokens equal.
# (1) greedy tokens 0.5B/1.5B/7B, short and 4,979-token prompts; (2) bench, base new off off new base, -d 0,4096;
# (3) backend_ops; (4) gpu_e2e synthetic (traced steps keep the prep launches, the captured graph takes the tail:
# the suite fails if their tokens differ). Carry exactly carry/mu.tar.xz, carry/tp.tar.xz, carry/benchsum2.py.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in mu tp; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
cat > /tmp/arm.sh <<'ARM'
#!/usr/bin/env bash
# arm.sh ARM graphrun-args...: base, new, or off (the branch with GRAPHRUN_TAIL_PREP=0)
a=$1; shift
case $a in base) exec /tmp/x/mu/graphrun "$@";; new) exec /tmp/x/tp/graphrun "$@";; off) GRAPHRUN_TAIL_PREP=0 exec /tmp/x/tp/graphrun "$@";; esac
ARM
chmod +x /tmp/arm.sh
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do /tmp/x/tp/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 0.5b 1.5b 7b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base new off; do timeout 60 /tmp/arm.sh $b run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  for b in new off; do cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_$b.txt && [ -s $O/run_${m}_${L}_$b.txt ] && echo "$m $L $b: tokens equal ($(wc -w < $O/run_${m}_${L}_$b.txt))" || echo "$m $L $b: TOKENS DIFFER"; done
done; done | tee $O/tokens.txt; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base new off off new base; do
  timeout 60 /tmp/arm.sh $b bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new off | grep tg | tee -a $O/bench_summary.txt; pack; done
timeout 40 /tmp/x/tp/backend_ops --ignored --nocapture > $O/backend_ops.log 2>&1; echo "backend_ops: exit $?"; grep -E "test result" $O/backend_ops.log
L=$((560 - SECONDS)); echo "=== gpu_e2e synthetic (new), $L s $(date +%T)"
if [ $L -gt 20 ]; then
  GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b,1.5b GRAPHRUN_E2E_LENGTHS=1,7,129,513 GRAPHRUN_E2E_REPORT=$O/gpu_e2e.jsonl \
    timeout $L /tmp/x/tp/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1
  echo "gpu_e2e: exit $? ($SECONDS s)"; grep -E "test result" $O/gpu_e2e.log | head -3; gzip -f $O/gpu_e2e.jsonl 2>/dev/null
fi
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
