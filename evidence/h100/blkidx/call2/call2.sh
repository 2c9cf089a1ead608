#!/usr/bin/env bash
# blkidx call 2: gpu_persistent on the change (the persistent kernel's matvec tiles share matvec_tile), which call 1
# capped at 45 s before it finished. Carry exactly carry/bi.tar.xz.
set -u
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache GRAPHRUN_REFERENCE=$PWD/tests/reference
O=$OUT/r; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,temperature.gpu,compute_cap --format=csv > $O/nvidia-smi.csv; cat $O/nvidia-smi.csv
mkdir -p /tmp/x && xz -dc carry/bi.tar.xz | tar xf - -C /tmp/x; chmod +x /tmp/x/bi/*
timeout 130 /tmp/x/bi/gpu_persistent --ignored --nocapture --test-threads 1 > $O/gpu_persistent.log 2>&1; echo "gpu_persistent exit $?: $(grep -E '^test result' $O/gpu_persistent.log | tail -1)"
(cd $OUT && tar czf r.tgz r); rm -rf $O
