#!/usr/bin/env bash
# q6-plane call 5: both harnesses with the `blkidx` controls added (the plane kernels' code over the GGUF blocks,
# addressed by a 32-bit block index), to tell the layout's share of the planes' gains from the code's; q4plane's
# invalid 0.5B gate+up shape (K = 896, not a multiple of 256: it hung call 4) replaced by the 0.5B's Q4_K down.
# Carry exactly carry/q6plane.xz, carry/q4plane.xz (../build.sh).
set -u
O=$OUT/r; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
for h in q4plane q6plane; do
  xz -dc carry/$h.xz > /tmp/$h && chmod +x /tmp/$h
  timeout 150 /tmp/$h > $O/$h.txt 2>&1; echo "$h exit $?"; grep -E "^[0-9]|base|plane |blkidx" $O/$h.txt
  (cd $OUT && tar czf r.tgz r)
done
rm -rf $O
