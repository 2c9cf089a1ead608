#!/usr/bin/env bash
# Builds call 3's carry on the CPU machine (run from the repository root):
#   mvbulk_{base,q6,q6b,q6c}: mvbulk.cu against main's generated matvec family (FAM, from a release
#     build's target/.../out/kernels_matvec.cu at ef6f6fc) with kernels/quant.cuh and kernels/matvec.cuh
#     replaced by their text at each commit of branch q6k-loads;
#   graphrun-base: main's binary; graphrun + gpu_batch: the branch's (scripts/make-gpu-carry).
# Needs the CUDA 13.0 nvcc from PyPI wheels unpacked in $TK (nvidia-cuda-nvcc, -crt, nvidia-nvvm,
# nvidia-cuda-runtime 13.0.x) and FAM pointing at main's kernels_matvec.cu.
set -eu
TK=${TK:-/tmp/cudatk}; FAM=${FAM:?kernels_matvec.cu of main}; D=$(mktemp -d)
E=evidence/h200/matvec-ring
cp $FAM $D/fam.cu
for v in q6:659d877 q6b:143bce5 q6c:c580be7; do
  name=${v%%:*}; rev=${v#*:}
  python3 - $D/fam.cu $D/fam_$name.cu $rev <<'PY'
import subprocess, sys
fam = open(sys.argv[1]).read()
for f, cut in (('kernels/quant.cuh', 6), ('kernels/matvec.cuh', 14)):  # the lines build.rs drops (header, includes)
    old = '\n'.join(subprocess.check_output(['git', 'show', 'ef6f6fc:' + f]).decode().split('\n')[cut:])
    new = '\n'.join(subprocess.check_output(['git', 'show', sys.argv[3] + ':' + f]).decode().split('\n')[cut:])
    assert fam.count(old) == 1, f
    fam = fam.replace(old, new)
open(sys.argv[2], 'w').write(fam)
PY
done
mkdir -p carry
for v in base q6 q6b q6c; do f=fam_$v.cu; [ $v = base ] && f=fam.cu
  cp $E/mvbulk.cu $D/ && (cd $D && $TK/bin/nvcc -O3 -arch=sm_90 -std=c++17 -DFAM="\"$f\"" -I$TK/include -L$TK/lib mvbulk.cu -o mvbulk_$v && strip mvbulk_$v)
  xz -9e -T2 -c $D/mvbulk_$v > carry/mvbulk_$v.xz
done
cp $E/call3-not-run/{call3.sh,mvsum.py,benchsum.py} carry/
echo "now add graphrun-base.xz (main), graphrun.xz and gpu_batch.xz (branch q6k-loads), stripped, xz -9e"
