#!/usr/bin/env bash
# bulk-ring call 1: mvbulk (weights through a per-warp shared-memory ring) vs the generated decode matvecs.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu --format=csv > $OUT/nvidia-smi.csv
xz -dc carry/mvbulk.xz > /tmp/mvbulk && chmod +x /tmp/mvbulk
timeout 200 /tmp/mvbulk > $OUT/mvbulk.txt 2>&1; echo "rc $?" >> $OUT/mvbulk.txt
cat $OUT/mvbulk.txt
