#!/usr/bin/env bash
# merge-prep call 2 (call 1's tokens and bench, which did not run; its suites did): decode attention's merge deferred to the attn_out matvec's prep (branch merge-prep: the
# splits write their partials and exit; `prep_merge` merges them over its CTAs, a thread a column, then quantizes)
# against main. Arms: `base` = main's graphrun (carry/pa.tar.xz, dir pa/, built from 1196236 = main's kernels and
# code), `new` = the branch (carry/mp.tar.xz, dir mp/: graphrun, backend_ops, gpu_persistent, gpu_batch, gpu_e2e),
# `off` = the branch's binary with GRAPHRUN_DEFER_MERGE=0 (the merging CTA, as main). Carry exactly
# carry/pa.tar.xz, carry/mp.tar.xz, carry/benchsum2.py.
# (1) greedy tokens, short and 4,979-token prompts, new and off against base (same arithmetic: must be equal);
# (2) bench A/B interleaved (base new off off new base) at depths 0, 4,096, 8,192 on the 7B, 1.5B, 0.5B;
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
cat $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in pa mp; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done; chmod +x /tmp/x/*/*
# `run ARM ARGS...` as a script, so that `timeout` can run it (call 1 had it as a shell function: timeout could
# not run it, and its tokens and bench steps produced nothing).
cat > /tmp/x/run <<'SH'
#!/usr/bin/env bash
a=$1; shift
case $a in base) exec /tmp/x/pa/graphrun "$@";; new) exec /tmp/x/mp/graphrun "$@";; off) export GRAPHRUN_DEFER_MERGE=0; exec /tmp/x/mp/graphrun "$@";; esac
SH
chmod +x /tmp/x/run; export PATH=/tmp/x:$PATH
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do run base synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 0.5b 1.5b 7b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base new off; do timeout 90 run $b run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  for b in new off; do python3 - $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_$b.txt "$m $L $b" <<'PY'
import sys
a, b = (open(f).read().split() for f in sys.argv[1:3])
d = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
print(f"{sys.argv[3]}: " + (f"tokens equal ({len(a)})" if a == b and a else f"tokens differ from index {d} of {len(a)}/{len(b)}"))
PY
  done
done; done | tee $O/tokens.txt; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base new off off new base; do
  timeout 90 run $b bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base new off | tee -a $O/bench_summary.txt; pack; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
