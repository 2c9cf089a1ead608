#!/usr/bin/env bash
# q6-plane call 3: q6plane with the per-row planes added (a row is [ql+qh][scales][d], padded to 16 bytes, so a
# row pointer and K find every plane; the layout every Q6_K reader could take). Carry exactly carry/q6plane.xz (../build.sh).
set -u
O=$OUT/r; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
xz -dc carry/q6plane.xz > /tmp/q6plane && chmod +x /tmp/q6plane
timeout 200 /tmp/q6plane > $O/q6plane.txt 2>&1; echo "q6plane exit $?"; cat $O/q6plane.txt
(cd $OUT && tar czf r.tgz r); rm -rf $O
