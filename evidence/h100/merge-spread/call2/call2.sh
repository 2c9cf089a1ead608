#!/usr/bin/env bash
# merge-spread call 2 (call 1 trimmed to 266 s of budget; call 1 lost its machine mid-run): decode attention's merge spread over the last min(G, active) CTAs of each KV group
# (branch merge-spread, arm `ms`) against main (arm `base`). Carry exactly: carry/pa.tar.xz (dir pa/: main's
# graphrun and backend_ops, built from 1196236 = main's kernels and code), carry/ms.tar.xz (dir ms/: the branch's
# graphrun, gpu_e2e, gpu_persistent, backend_ops, gpu_batch), carry/benchsum2.py.
# (1) greedy tokens, short and 4,979-token prompts (the arithmetic is unchanged: they must be equal); (2) bench
# A/B interleaved (base, ms, ms, base) at depths 0, 4,096, 8,192; (3) backend_ops, gpu_batch (the
# batched step keeps the single merger) and a capped gpu_e2e (synthetic) on the branch.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in pa ms; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
declare -A X=([base]=/tmp/x/pa/graphrun [ms]=/tmp/x/ms/graphrun)
mkdir -p /tmp/gr; for p in 1.5b 7b; do ${X[base]} synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 1.5b 7b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base ms; do timeout 90 ${X[$b]} run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  python3 - $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_ms.txt "$m $L" <<'PY'
import sys
a, b = (open(f).read().split() for f in sys.argv[1:3])
d = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
print(f"{sys.argv[3]}: " + (f"tokens equal ({len(a)})" if a == b and a else f"tokens differ from index {d} of {len(a)}/{len(b)}"))
PY
done; done | tee $O/tokens.txt; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 7b 1.5b; do for b in base ms ms base; do
  timeout 90 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base ms | tee -a $O/bench_summary.txt; pack; done
export GRAPHRUN_BIN=${X[ms]}
echo "=== suites (ms) $(date +%T) ($SECONDS s)"
timeout 60 /tmp/x/ms/backend_ops --ignored --nocapture > $O/backend_ops.log 2>&1; echo "backend_ops: exit $?"; grep -E "test result" $O/backend_ops.log
timeout 90 /tmp/x/ms/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch: exit $? ($SECONDS s)"; grep -E "test result" $O/gpu_batch.log
pack
L=$((175 - SECONDS)); echo "=== gpu_e2e synthetic (ms), $L s $(date +%T)"
GRAPHRUN_E2E_PRESETS=tiny,0.5b GRAPHRUN_E2E_LENGTHS=1,7,129,513 \
  timeout $L /tmp/x/ms/gpu_e2e synthetic --ignored --nocapture > $O/gpu_e2e.log 2>&1
echo "gpu_e2e: exit $? ($SECONDS s)"; grep -E "test result" $O/gpu_e2e.log | head -3; grep -c "tokens interp" $O/gpu_e2e.log
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
