#!/usr/bin/env bash
# attn-depth call 4 (prepared 2026-12-05, session 50; not yet run): calls 2 and 3 and ../../prep-ahead/call1 in one
# device call of about 5 minutes, for a session that gets few. Binaries (carry exactly these five files, 29 MB):
#   carry/m.tar.xz   dir m/: main 89d412b graphrun, gpu_batch, gpu_e2e (base)
#   carry/p2.tar.xz  dir p2/: branch att-pre2 17f4bb4 graphrun (decode attention's first two stages before the wait)
#   carry/pa.tar.xz  dir pa/: branch prep-ahead 1196236 graphrun, backend_ops (prep's norm weights into L1 before the wait)
#   carry/benchsum2.py
#   carry/fam_att.cu  the attention family source main's build generates (attnbench3 includes it)
# (1) attnbench3 (phases at depth; pre2/m16/m32 against gen, bit for bit); (2) greedy tokens of the three binaries,
# short and 5,000-token prompts; (3) bench A/B interleaved (base, p2, pa, pa, p2, base) at depths 0, 4,096, 8,192;
# (4) gpu_batch on 89d412b (the batched attention grid that keeps the packed launch); (5) backend_ops on prep-ahead.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry; D=evidence/h100/attn-depth
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && for t in m p2 pa; do xz -dc $C/$t.tar.xz | tar xf - -C /tmp/x; done && chmod +x /tmp/x/*/*
declare -A X=([base]=/tmp/x/m/graphrun [p2]=/tmp/x/p2/graphrun [pa]=/tmp/x/pa/graphrun)
echo "=== attnbench3 $(date +%T) ($SECONDS s)"
nvcc --version | tail -2 > $O/nvcc.txt
nvcc -O3 -arch=sm_90 -std=c++17 -DFAM='"fam_att.cu"' -I$C $D/attnbench3.cu -o /tmp/attnbench3 2>&1 | grep -v deprecated
timeout 120 /tmp/attnbench3 > $O/attnbench3.txt 2>&1; echo "attnbench3: exit $?"; cat $O/attnbench3.txt; pack
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do ${X[base]} synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 0.5b 1.5b 7b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base p2 pa; do timeout 90 ${X[$b]} run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  for b in p2 pa; do cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_$b.txt && echo "$m $L $b: tokens equal to base ($(wc -c < $O/run_${m}_${L}_$b.txt) bytes)" || echo "$m $L $b: TOKENS DIFFER"; done
done; done | tee $O/tokens.txt; pack
echo "=== bench A/B $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base p2 pa pa p2 base; do
  timeout 90 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096,8192 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base p2 pa | tee -a $O/bench_summary.txt; pack; done
echo "=== gpu_batch (89d412b) $(date +%T) ($SECONDS s)"
GRAPHRUN_BIN=${X[base]} timeout 150 /tmp/x/m/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep -E "^test |test result" $O/gpu_batch.log; pack
echo "=== backend_ops (prep-ahead) $(date +%T) ($SECONDS s)"
GRAPHRUN_BIN=${X[pa]} timeout 120 /tmp/x/pa/backend_ops --ignored --nocapture > $O/backend_ops_pa.log 2>&1; echo "backend_ops: exit $?"; grep -E "test result" $O/backend_ops_pa.log
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
