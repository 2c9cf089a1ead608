#!/usr/bin/env bash
# q4k-decode call 2 (H200; prepared 2026-12-04, NOT RUN). Carry: graphrun-base (main), graphrun + backend_ops
# (q4k-clamp c8118ce). (1) bench A/B, runs alternating base, new, new, base: `bench -p 512 -n 128 -d 0,4096 -r 2`;
# (2) fused decode profiles (base, new); (3) backend_ops (new): every kernel against the CPU interpreter.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun; B=$C/graphrun-base
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== bench A/B $(date +%T)"
for m in 7b 1.5b 0.5b; do for b in base new new base; do X=$G; [ $b = base ] && X=$B
  timeout 100 $X bench /tmp/gr/$m.gguf -p 512 -n 128 -d 0,4096 -r 2 --json > $O/bench_${m}_${b}_$(date +%s%N).json 2>>$O/bench_${m}_$b.err; done
  python3 $C/benchsum.py $O $m | tee -a $O/bench_summary.txt; pack
done
echo "=== fused profiles 7b, 1.5b (base, new) $(date +%T)"
for m in 7b 1.5b; do for b in base new; do X=$G; [ $b = base ] && X=$B
  timeout 60 $X dump --stage fused --profile /tmp/gr/$m.gguf > $O/profile_${m}_$b.txt 2>&1; echo "$m $b: $(grep -iE "total|step" $O/profile_${m}_$b.txt | tail -2 | tr '\n' ' ' | cut -c1-200)"; done; done; pack
echo "=== backend_ops (new) $(date +%T)"
timeout 150 $C/backend_ops --ignored --nocapture --test-threads 1 > $O/backend_ops.log 2>&1; echo "backend_ops exit $?" >> $O/backend_ops.log; grep -E "test result|exit" $O/backend_ops.log
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
