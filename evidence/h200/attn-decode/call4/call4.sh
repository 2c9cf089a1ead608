#!/usr/bin/env bash
# device call 4 of 2026-12-02 (second session): `graphrun dump --stage fused --profile` with the new per-layer
# summary (each block's time against its weights at the measured plain read rate), main's kernels (f504282),
# on the 7B and 1.5B presets, and the 1.5B's persistent kernel the same way.
set -u
cd carry && for f in *.xz; do xz -d -T0 $f; done; chmod +x *; cd ..
C=$PWD/carry; O=$OUT/r; mkdir -p $O; G=$C/graphrun
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64 CUDA_CACHE_PATH=/tmp/cudacache
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.sm,memory.total,driver_version --format=csv > $O/nvidia-smi.txt
mkdir -p /tmp/gr; for p in 1.5b 7b; do $G synth --preset $p -o /tmp/gr/$p.gguf 2>&1 | tail -1; done
for m in 7b 1.5b; do timeout 60 $G dump --stage fused --profile /tmp/gr/$m.gguf > $O/profile_${m}.txt 2>&1
  grep -A4 "^per layer" $O/profile_${m}.txt; tail -2 $O/profile_${m}.txt; done
timeout 60 $G dump --stage fused --profile --decode-kernel persistent /tmp/gr/1.5b.gguf > $O/profile_1.5b_persistent_program.txt 2>&1
grep -A30 "^per layer" $O/profile_1.5b_persistent_program.txt | head -8; grep "launch span" $O/profile_1.5b_persistent_program.txt
cd $OUT && tar czf r.tgz r && rm -rf r
