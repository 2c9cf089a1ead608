#!/usr/bin/env bash
# Builds call 1's mvbench variants here (CPU machine; CUDA 13.0 nvcc, crt, nvvm and cudart from PyPI
# wheels unpacked into $TK). fam_base.cu = kernels_matvec.cu that build.rs generates at 22096c2,
# fam_new.cu = the same at the working tree of call 1 (target/release/build/graphrun-*/out/).
# Variants differ only in the launch bounds of the generated wrappers.
set -eu
TK=${TK:-/tmp/cudatk}
sed 's/__launch_bounds__(256, 4) matvec_/__launch_bounds__(256, 2) matvec_/' fam_new.cu > fam_new_b2.cu
sed 's/__launch_bounds__(256, 4) matvec_/__launch_bounds__(256, 3) matvec_/' fam_new.cu > fam_new_b3.cu
sed -e 's/__launch_bounds__(256, 4) matvec_/__launch_bounds__(256, 2) matvec_/' \
    -e 's/__global__ void matvec_\(.*\)_swiglu(/__global__ void __launch_bounds__(256, 2) matvec_\1_swiglu(/' fam_new.cu > fam_new_sw2.cu
for v in base new new_b2 new_b3 new_sw2; do
  $TK/bin/nvcc -O3 -arch=sm_90 -std=c++17 -DFAM="\"fam_$v.cu\"" -I$TK/include -L$TK/lib mvbench.cu -o mvbench_$v
done
