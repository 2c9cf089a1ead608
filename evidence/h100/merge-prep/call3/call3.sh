#!/usr/bin/env bash
# merge-prep call 3: one decode step's launches (`dump --stage fused --timeline`, the step 8 after an N-token
# prompt) on main 151491e's stamped build (GRAPHRUN_STAMPS=1; carry/st.tar.xz, dir st/), with the deferred merge
# (`on`) and without it (`off`: GRAPHRUN_DEFER_MERGE=0, the merging CTA), 7B and 1.5B presets, N = 4096 and 512.
# Carry exactly carry/st.tar.xz.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
O=$OUT/r; mkdir -p $O; C=$PWD/carry
pack() { (cd $OUT && tar czf r.tgz r); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && xz -dc $C/st.tar.xz | tar xf - -C /tmp/x && chmod +x /tmp/x/*/*
S=/tmp/x/st
mkdir -p /tmp/gr; for p in 1.5b 7b; do $S/graphrun synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
for m in 7b 1.5b; do for n in 4096 512; do for d in on off; do
  E=1; [ $d = off ] && E=0
  GRAPHRUN_DEFER_MERGE=$E timeout 60 $S/graphrun dump --stage fused --timeline --prompt $n /tmp/gr/$m.gguf > $O/timeline_${m}_p${n}_$d.txt 2>> $O/timeline.err
  echo "$m p$n $d: exit $?"; head -1 $O/timeline_${m}_p${n}_$d.txt; grep -A12 "^per kernel" $O/timeline_${m}_p${n}_$d.txt | cut -c1-90
done; pack; done; done
for d in on off; do E=1; [ $d = off ] && E=0
  GRAPHRUN_DEFER_MERGE=$E timeout 60 $S/graphrun dump --stage fused --timeline --prompt 4096 --format json /tmp/gr/7b.gguf 2>> $O/timeline.err | gzip > $O/timeline_7b_p4096_$d.json.gz; done
echo "end $(date +%T) ($SECONDS s)"
pack; rm -rf $O
