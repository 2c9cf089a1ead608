#!/usr/bin/env bash
# timeline call (2026-12-05, session 49): (1) `dump --stage fused --timeline` of one decode step on the 0.5b, 1.5b and
# 7b presets, from a diagnostic build (branch timeline, GRAPHRUN_STAMPS=1; carry/stamps.tar.xz dir st/); (2) what the
# stamps cost: tg128 of the stamped binary against main's (718f8e7, carry/suites.tar.xz dir m/) interleaved, and
# --profile of both on the 1.5b; (3) the suites not yet run on main's binaries: gpu_sample, gpu_persistent.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && xz -dc $C/suites.tar.xz | tar xf - -C /tmp/x && xz -dc $C/stamps.tar.xz | tar xf - -C /tmp/x && chmod +x /tmp/x/*/*
M=/tmp/x/m; S=/tmp/x/st
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $M/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
echo "=== timelines $(date +%T) ($SECONDS s)"
for m in 1.5b 7b 0.5b 1.5b; do
  timeout 60 $S/graphrun dump --stage fused --timeline /tmp/gr/$m.gguf > $O/timeline_${m}_$SECONDS.txt 2> $O/timeline_$m.err; echo "$m: exit $?"; done
for m in 1.5b 7b; do timeout 60 $S/graphrun dump --stage fused --timeline --format json /tmp/gr/$m.gguf 2>> $O/timeline_$m.err | gzip > $O/timeline_$m.json.gz; done
for f in $O/timeline_*.txt; do echo "--- $f"; grep -A14 "^per kernel" $f; tail -2 $f; done; pack
echo "=== stamps' cost: tg128 main vs stamped (disarmed) $(date +%T) ($SECONDS s)"
declare -A X=([main]=$M/graphrun [stamps]=$S/graphrun)
for m in 1.5b 7b; do for b in main stamps stamps main; do
  timeout 60 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph main stamps | tee -a $O/bench_summary.txt; done; pack
for b in main stamps; do timeout 60 ${X[$b]} dump --stage fused --profile /tmp/gr/1.5b.gguf > $O/profile_1.5b_$b.txt 2>&1; echo "profile $b: exit $?"; grep "total kernel time" $O/profile_1.5b_$b.txt; done; pack
echo "=== gpu_sample, gpu_persistent on main $(date +%T) ($SECONDS s)"
export GRAPHRUN_BIN=$M/graphrun
timeout 50 $M/gpu_sample --ignored --nocapture --test-threads 1 > $O/gpu_sample.log 2>&1
echo "gpu_sample: exit $? ($SECONDS s)"; grep "test result" $O/gpu_sample.log; pack
timeout 110 $M/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1
echo "gpu_persistent: exit $? ($SECONDS s)"; grep -E "^test |test result" $O/gpu_persistent.log
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
