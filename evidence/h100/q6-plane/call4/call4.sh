#!/usr/bin/env bash
# q6-plane call 4: q4plane (../q4plane.cu: the Q4_K decode matvecs, SwiGLU gate+up and the residual add, over a qs
# plane and a head plane against the generated kernels, same bits). Carry exactly carry/q4plane.xz (../build.sh).
set -u
O=$OUT/r; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
xz -dc carry/q4plane.xz > /tmp/q4plane && chmod +x /tmp/q4plane
timeout 200 /tmp/q4plane > $O/q4plane.txt 2>&1; echo "q4plane exit $?"; cat $O/q4plane.txt
(cd $OUT && tar czf r.tgz r); rm -rf $O
