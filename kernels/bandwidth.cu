// bandwidth.cu — a plain streaming read of a large buffer (16-byte loads), used by
// `graphrun bench` to measure the device's achievable read bandwidth in the same run.
#include "common.cuh"

__device__ void read_bw_impl(const ReadArgs& g) {
    const uint4* x = (const uint4*)g.x;
    u32 acc = 0;
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < g.n16; i += (u64)gridDim.x * blockDim.x) {
        uint4 v = x[i];
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x12345678u) ((u32*)g.out)[0] = acc;  // keeps the loads alive
}
