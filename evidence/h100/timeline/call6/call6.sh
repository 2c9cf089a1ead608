#!/usr/bin/env bash
# timeline call 6 (2026-12-05, session 49): one decode step's launches at depth, `dump --stage fused --timeline
# --prompt 4096` (the step at position 4,104) against --prompt 512 (position 520), 7b/1.5b/0.5b presets. Binary: the
# stamped build (GRAPHRUN_STAMPS=1) of branch tl-depth (main db855a2 + --timeline taking --prompt: bc03a3e), carry/sd.tar.xz dir sd/.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv
mkdir -p /tmp/x && xz -dc $C/sd.tar.xz | tar xf - -C /tmp/x && chmod +x /tmp/x/*/*
S=/tmp/x/sd
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $S/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
for m in 7b 1.5b 0.5b; do for n in 4096 512; do
  timeout 60 $S/graphrun dump --stage fused --timeline --prompt $n /tmp/gr/$m.gguf > $O/timeline_${m}_p$n.txt 2>> $O/timeline.err; echo "$m p$n: exit $?"
  head -1 $O/timeline_${m}_p$n.txt; grep -A11 "^per kernel" $O/timeline_${m}_p$n.txt | cut -c1-82; done; done; pack
for m in 7b 1.5b; do timeout 60 $S/graphrun dump --stage fused --timeline --prompt 4096 --format json /tmp/gr/$m.gguf 2>> $O/timeline.err | gzip > $O/timeline_${m}_p4096.json.gz; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
