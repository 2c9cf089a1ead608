#!/usr/bin/env bash
# tail-prep call 3: one decode step's launches (`dump --stage fused --timeline --prompt 512`) on the branch's
# stamped build (GRAPHRUN_STAMPS=1, carry/tps.tar.xz, dir tps/), with the tail prep (`on`) and without it
# (`off`: GRAPHRUN_TAIL_PREP=0, main's prep launches), 7B, 1.5B and 0.5B presets. Carry exactly carry/tps.tar.xz.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && xz -dc $C/tps.tar.xz | tar xf - -C /tmp/x && chmod +x /tmp/x/*/*
S=/tmp/x/tps
mkdir -p /tmp/gr; for p in 0.5b 1.5b 7b; do $S/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
for m in 7b 1.5b 0.5b; do for d in on off; do
  E=1; [ $d = off ] && E=0
  GRAPHRUN_TAIL_PREP=$E timeout 60 $S/graphrun dump --stage fused --timeline --prompt 512 /tmp/gr/$m.gguf > $O/timeline_${m}_p512_$d.txt 2>> $O/timeline.err
  echo "$m $d: exit $?"; head -1 $O/timeline_${m}_p512_$d.txt; grep -A12 "^per kernel" $O/timeline_${m}_p512_$d.txt | cut -c1-110
done; pack; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
