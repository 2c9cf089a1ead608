#!/usr/bin/env bash
# matvec-ring call 3 (H200; prepared 2026-12-04, NOT RUN: the device stopped answering, then loans were paused): (1) mvbulk — the generated decode matvecs of main (base), with Q6_K's
# branch-free word loads (q6, 659d877), q6 with unsigned unit index arithmetic (q6b, 143bce5), and those with
# the coalesced 8-lane Q6_K loads (q6c, c580be7), arms alternating, outputs compared bit for bit; (2) graphrun
# built from branch q6k-loads (scripts/make-gpu-carry, GPU_TESTS=gpu_batch) against
# main's binary (22932fe, same kernels as ef6f6fc): greedy tokens, trace_exact, bench A/B
# (base, new, new, base), fused profiles (base, new), gpu_batch (backend_ops left out by the 64 MiB carry limit: new is checked bit for bit against base, which passed it).
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
export PATH=$PATH:/usr/local/cuda/bin
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
echo "=== mvbulk $(date +%T)"
for v in base q6 q6b q6c; do mkdir -p /tmp/dump_$v; done
for rep in 1 2; do for v in base q6 q6b q6c; do
  MVB_BASE_ONLY=1 MVB_DUMP=/tmp/dump_$v timeout 60 $C/mvbulk_$v > $O/mvbulk_${v}_$rep.txt 2>&1; echo "$v $rep rc $? ($SECONDS s)"
done; done
for v in q6 q6b q6c; do for f in /tmp/dump_base/*.bin; do b=$(basename $f); cmp -s $f /tmp/dump_$v/$b && echo "$v $b: identical to base" || echo "$v $b: DIFFERS from base"; done; done | tee $O/mvbulk_bits.txt
python3 $C/mvsum.py $O | tee $O/mvbulk_summary.txt
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== greedy tokens base vs new $(date +%T)"
for m in 0.5b 1.5b 7b; do
  timeout 60 $B run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_base.txt 2> $O/run_${m}_base.err
  timeout 60 $G run /tmp/gr/$m.gguf -p "def fibonacci(n):" -n 64 --ids > $O/run_${m}_new.txt 2> $O/run_${m}_new.err
  cmp -s $O/run_${m}_base.txt $O/run_${m}_new.txt && echo "$m: tokens equal to base" || echo "$m: TOKENS DIFFER"; done
echo "=== trace_exact new vs base $(date +%T)"
P=$(python3 -c "print(' '.join(['def f%d(x): return x*%d' % (i,i) for i in range(30)]))")
for m in 1.5b 7b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  $X trace /tmp/gr/$m.gguf -p "$P" --gpu --decode 3 --nodes 'blk.0.*,blk.13.*,blk.27.*,output*,result*' -o /tmp/tr_${m}_$b > /dev/null 2>&1; done
  $G diff /tmp/tr_${m}_new /tmp/tr_${m}_base --contract trace_exact > $O/trace_new_vs_base_$m.txt 2>&1; echo "diff exit $?" >> $O/trace_new_vs_base_$m.txt
  echo "$m: $(grep -E "verdict" $O/trace_new_vs_base_$m.txt | cut -c1-120)"; done
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b 0.5b; do for b in base new new base; do X=$G; [ $b = base ] && X=$B
  timeout 100 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_${b}_$(date +%s%N).json 2>>$O/bench_${m}_$b.err; done
  python3 $C/benchsum.py $O $m | tee -a $O/bench_summary.txt
done
echo "=== fused profiles 7b, 1.5b (base, new) $(date +%T)"
for m in 7b 1.5b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X dump --stage fused --profile /tmp/gr/$m.gguf > $O/profile_${m}_$b.txt 2>&1; echo "$m $b: $(grep -iE "total|step" $O/profile_${m}_$b.txt | tail -2 | tr '\n' ' ' | cut -c1-200)"; done; done
echo "=== gpu_batch (new) $(date +%T)"
timeout 120 $C/gpu_batch --ignored --nocapture --test-threads 1 > $O/gpu_batch.log 2>&1; echo "gpu_batch exit $?" >> $O/gpu_batch.log; grep -E "test result|exit" $O/gpu_batch.log
echo "end $(date +%T) ($SECONDS s)"
cd $OUT && tar czf r.tgz r && rm -rf r
