#!/usr/bin/env bash
# q6-plane call 2: q6plane with the padded-block variant added (224-byte blocks: the GGUF block and 14 zero bytes,
# so every block is 16-byte aligned and each lane's runs are single 16-byte loads; the block-local offsets and so
# every other kernel's addressing unchanged). Carry exactly carry/q6plane.xz (../build.sh).
set -u
O=$OUT/r; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
xz -dc carry/q6plane.xz > /tmp/q6plane && chmod +x /tmp/q6plane
timeout 200 /tmp/q6plane > $O/q6plane.txt 2>&1; echo "q6plane exit $?"; cat $O/q6plane.txt
(cd $OUT && tar czf r.tgz r); rm -rf $O
