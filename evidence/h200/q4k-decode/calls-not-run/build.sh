#!/usr/bin/env bash
# Builds the carry of calls 1 and 2 on the CPU machine (run from the repository root of a clone that has
# the commits below: branches main, q6k-loads, q4k-consume, q4k-ahead, q4k-rows, q4k-clamp):
#   mvbulk_<v>: evidence/h200/matvec-ring/mvbulk.cu against main's generated matvec family (FAM: a release
#     build's target/.../out/kernels_matvec.cu of main) with kernels/quant.cuh and kernels/matvec.cuh replaced
#     by their text at each variant's commit, cut to the four kernels mvbulk times:
#       base  685704d main (the kernels of ef6f6fc)
#       q6c   c580be7 q6k-loads: the Q6_K loads (matvec-ring/README.md)
#       q4c   01d5aab q4k-consume: q6c + Q4_K's branch-free decode (this folder's README)
#       q4c2  q4c with the Q4_K SwiGLU kernel at __launch_bounds__(256, 2) (128 registers) instead of 3
#       q4e2  5d28b95 q4k-ahead: q4c + the SwiGLU rows' loads two stages ahead, at (256, 2) (it spills at 3)
#       q4s   31719a5 q4k-rows: q4c + the residual Q4_K matvec's rows loaded without a branch, at (256, 3)
#             (main's catalogue, which generated FAM, says 4; q4k-rows' says 3; 0d9f6ce), and
#             ld_words_a2(_in) loads global (LDG), not generic (LD). The two touch different kernels
#             (Q4_K add; Q6_K), so each shape shows one of them.
#       q4z   c8118ce q4k-clamp: q4s with rows past the matrix clamped, not predicated (no zeroing)
#   graphrun-base (main), graphrun + gpu_batch (c8118ce) and backend_ops (c8118ce, call 2) come
#     from scripts/make-gpu-carry in worktrees of those commits; stripped, xz -9e.
# Needs the CUDA 13.0 nvcc from PyPI wheels unpacked in $TK (nvidia-cuda-nvcc, -crt, nvidia-nvvm,
# nvidia-cuda-runtime 13.0.x).
set -eu
TK=${TK:-/tmp/cudatk}; FAM=${FAM:?kernels_matvec.cu of main}; D=$(mktemp -d)
E=evidence/h200/matvec-ring
for v in base:685704d q6c:c580be7 q4c:01d5aab q4c2:01d5aab q4e2:5d28b95 q4s:31719a5 q4z:c8118ce; do
  name=${v%%:*}; rev=${v#*:}
  python3 - $FAM $D/fam_$name.cu $rev $name <<'PY'
import subprocess, sys, re
fam, out, rev, name = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], sys.argv[4]
for f, cut in (('kernels/quant.cuh', 6), ('kernels/matvec.cuh', 14)):  # the lines build.rs drops (header, includes)
    old = '\n'.join(subprocess.check_output(['git', 'show', 'ef6f6fc:' + f]).decode().split('\n')[cut:])
    new = '\n'.join(subprocess.check_output(['git', 'show', rev + ':' + f]).decode().split('\n')[cut:])
    assert fam.count(old) == 1, f
    fam = fam.replace(old, new)
lib, wrappers = fam.split('// ---- catalogue wrappers ----\n')
keep = [l for l in wrappers.split('\n') if re.search(r' (matvec_q4_k_q8_swiglu|matvec_q4_k_q8_add|matvec_q6_k_q8_add|matvec_q6_k_q8_none)\(', l)]
assert len(keep) == 4, keep
if name.endswith('2'):
    keep = [l.replace('__launch_bounds__(256, 3) matvec_q4_k_q8_swiglu', '__launch_bounds__(256, 2) matvec_q4_k_q8_swiglu') for l in keep]
    assert any('(256, 2) matvec_q4_k_q8_swiglu' in l for l in keep)
if name in ('q4s', 'q4z'):
    keep = [l.replace('__launch_bounds__(256, 4) matvec_q4_k_q8_add', '__launch_bounds__(256, 3) matvec_q4_k_q8_add') for l in keep]
    assert any('(256, 3) matvec_q4_k_q8_add' in l for l in keep)
open(out, 'w').write(lib + '// ---- catalogue wrappers ----\n' + '\n'.join(keep) + '\n')
PY
done
mkdir -p carry
for v in base q6c q4c q4c2 q4e2 q4s q4z; do
  cp $E/mvbulk.cu $D/ && (cd $D && $TK/bin/nvcc -O3 -arch=sm_90 -std=c++17 -DFAM="\"fam_$v.cu\"" -DMVB_NO_HOIST -I$TK/include -L$TK/lib mvbulk.cu -o mvbulk_$v && strip mvbulk_$v)
  xz -9e -T2 -c $D/mvbulk_$v > carry/mvbulk_$v.xz
done
cp evidence/h200/q4k-decode/calls-not-run/{call1.sh,call2.sh,mvsum.py,benchsum.py} carry/
ls -la carry
