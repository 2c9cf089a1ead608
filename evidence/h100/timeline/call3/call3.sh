#!/usr/bin/env bash
# timeline call 3 (2026-12-05, session 49; call 2 failed: the stamps' static shared memory broke kernels that raise
# their dynamic shared memory to the device's limit). (1) `dump --stage fused --timeline` of one decode step, 0.5b/1.5b/7b
# presets, diagnostic build (branch timeline, GRAPHRUN_STAMPS=1; carry/stamps.tar.xz dir st/), programmatic launches
# and (GRAPHRUN_PDL=0) plain ones; (2) what the stamps cost: tg128 stamped (disarmed) vs main 718f8e7 (carry/suites.tar.xz
# dir m/), interleaved, and --profile of both on the 1.5b.
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
  timeout 60 $S/graphrun dump --stage fused --timeline /tmp/gr/$m.gguf > $O/timeline_${m}_$SECONDS.txt 2>> $O/timeline_$m.err; echo "$m: exit $?"; done
for m in 1.5b 7b; do GRAPHRUN_PDL=0 timeout 60 $S/graphrun dump --stage fused --timeline /tmp/gr/$m.gguf > $O/timeline_${m}_nopdl.txt 2>> $O/timeline_$m.err; echo "$m no PDL: exit $?"; done
for m in 1.5b 7b 0.5b; do timeout 60 $S/graphrun dump --stage fused --timeline --format json /tmp/gr/$m.gguf 2>> $O/timeline_$m.err | gzip > $O/timeline_$m.json.gz; done
for f in $O/timeline_*.txt; do echo "--- $f"; head -1 $f; grep -A16 "^per kernel" $f; tail -2 $f; done; pack
echo "=== stamps' cost: tg128 main vs stamped (disarmed) $(date +%T) ($SECONDS s)"
declare -A X=([main]=$M/graphrun [stamps]=$S/graphrun)
for m in 1.5b 7b; do for b in main stamps stamps main; do
  timeout 60 ${X[$b]} bench /tmp/gr/$m.gguf -p 512 -n 128 -r 2 --json > $O/bench_${m}_graph_${b}_$(date +%s%N).json 2>>$O/bench_${m}_graph_$b.err; done
  python3 $C/benchsum2.py $O $m graph main stamps | tee -a $O/bench_summary.txt; done; pack
for b in main stamps; do timeout 60 ${X[$b]} dump --stage fused --profile /tmp/gr/1.5b.gguf > $O/profile_1.5b_$b.txt 2>&1; echo "profile $b: exit $?"; grep "total kernel time" $O/profile_1.5b_$b.txt; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
