#!/usr/bin/env bash
# Call 4 (H200): the parity suites on this commit's build (v9; `GPU_TESTS="backend_ops gpu_e2e
# gpu_persistent" scripts/make-gpu-carry`, carried xz-compressed), since quant.cuh (included by every matvec
# family and the persistent kernel) changed: backend ops, the persistent decode kernel's
# suite, synthetic end-to-end on tiny, tiny-llama, 0.5B and 1.5B. Logs go into logs.tgz.
set -u
mkdir -p /tmp/c && for f in backend_ops gpu_e2e gpu_persistent graphrun; do xz -dc carry/$f.xz > /tmp/c/$f && chmod +x /tmp/c/$f; done
export GRAPHRUN_E2E_PRESETS=tiny,tiny-llama,0.5b,1.5b
scripts/gpu-check /tmp/c $OUT smoke ops persist e2e 2>&1 | grep -E "^===|test result|FAILED|panicked" | head -40
tar czf /tmp/logs.tgz -C $OUT . && find $OUT -mindepth 1 -delete && mv /tmp/logs.tgz $OUT/
