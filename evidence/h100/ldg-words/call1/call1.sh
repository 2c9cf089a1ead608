#!/usr/bin/env bash
# Session 57, call 1: branch ldg-only (carry/c1.tar.xz, dir ld/: graphrun, gpu_batch, backend_ops) against main
# e878789 (same file, dir base/: graphrun). The change: ld_words_a2{,_in} (kernels/quant.cuh) find the aligned word
# below p by pointer arithmetic instead of masking its integer value, so ptxas emits global loads (LDG) where it
# emitted generic ones (LD): every Q6_K weight load of the decode matvecs, Q8_0's and Q5_0's too (scripts/sass-report).
# The same bytes, so the same bits.
# (1) greedy tokens base vs ld (7B, 1.5B, 0.5B; 32 tokens after a short prompt, 16 after a 4,979-token one);
# (2) bench -p 512 -n 128 -d 0,4096 -r 2, arms base ld ld base base ld; (3) dump --stage fused --profile, 7B, both;
# (4) gpu_batch and backend_ops on ld; (5) serve 1, 2, 4, 8 streams, 7B and 1.5B, arms base ld ld base.
# Carry exactly carry/c1.tar.xz, carry/benchsum2.py, carry/call1.sh.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
X=$(mktemp -d); xz -dc $C/c1.tar.xz | tar xf - -C $X; chmod +x $X/*/*
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $X/base/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== tokens $(date +%T) ($SECONDS s)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(40)]))")
PL=$(python3 -c "print(' '.join(['def g%d(x): return x+%d' % (i,i) for i in range(200)]))")
for m in 7b 1.5b 0.5b; do for L in short long; do
  Q="$P"; n=32; [ $L = long ] && Q="$PL" && n=16
  for b in base ld; do timeout 60 $X/$b/graphrun run /tmp/gr/$m.gguf -p "$Q" -n $n --ctx 8192 --ids > $O/run_${m}_${L}_$b.txt 2> $O/run_${m}_${L}_$b.err; done
  cmp -s $O/run_${m}_${L}_base.txt $O/run_${m}_${L}_ld.txt && [ -s $O/run_${m}_${L}_ld.txt ] && echo "$m $L: tokens equal ($(wc -w < $O/run_${m}_${L}_ld.txt))" || echo "$m $L: TOKENS DIFFER"
done; done | tee $O/tokens.txt; pack
echo "=== bench $(date +%T) ($SECONDS s)"
for m in 7b 1.5b 0.5b; do for b in base ld ld base base ld; do
  timeout 60 $X/$b/graphrun bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph base ld | grep tg | tee -a $O/bench_summary.txt; pack; done
echo "=== profile $(date +%T) ($SECONDS s)"
for b in base ld; do timeout 60 $X/$b/graphrun dump /tmp/gr/7b.gguf --stage fused --profile > $O/profile_7b_$b.txt 2> $O/profile_7b_$b.err; echo "profile $b exit $?"; done; pack
echo "=== gpu_batch (ld) $(date +%T) ($SECONDS s)"
GRAPHRUN_BIN=$X/ld/graphrun timeout 120 $X/ld/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1
echo "gpu_batch: exit $? ($SECONDS s)"; grep -E "^test result" $O/gpu_batch.log; pack
echo "=== suites $(date +%T) ($SECONDS s)"
timeout 60 $X/ld/backend_ops --ignored --nocapture > $O/backend_ops.log 2>&1; echo "backend_ops (ld) exit $?: $(grep -E '^test result' $O/backend_ops.log | tail -1)"
pack
serve_run() {  # arm dir, preset, tag
  $X/$1/graphrun serve /tmp/gr/$2.gguf --parallel 8 --ctx 1024 --port 18090 2> $O/serve_server_$3.log & S=$!
  for i in $(seq 60); do curl -s http://127.0.0.1:18090/health > /dev/null 2>&1 && break; sleep 0.5; done
  timeout 80 python3 tests/serve/bench_streams.py http://127.0.0.1:18090/v1 --streams 1,2,4,8 --tokens 128 --reps 2 --pid $S > $O/servebench_$3.txt 2>&1
  echo "== serve $3 $(grep median $O/servebench_$3.txt | python3 -c 'import sys,json; print(" ".join(str(json.loads(l)["median_aggregate_decode_tok_s"]) for l in sys.stdin))') ($SECONDS s)"
  kill $S; wait $S 2>/dev/null
}
echo "=== serve $(date +%T) ($SECONDS s)"
for p in 7b 1.5b; do i=0; for b in base ld ld base; do i=$((i+1)); serve_run $b $p ${p}_${b}_$i; done; pack; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
