// argmax.cuh — the greedy choice as src/numerics.rs argmax makes it: the largest value,
// the lowest index on ties, NaN never chosen. Shared by argmax.cu and the persistent kernel.
#pragma once
#include "common.cuh"

__device__ __forceinline__ void amax_merge(float& best, int& idx, float v, int i) {
    if (v > best || (v == best && i < idx)) {
        best = v;
        idx = i;
    }
}

// Block-wide merge; thread 0 ends with the result. `bv`, `bi`: 32 entries of shared memory
// (reused by the next call only after a __syncthreads).
__device__ __forceinline__ void block_amax(float& best, int& idx, float* bv, int* bi) {
    for (int o = 16; o > 0; o >>= 1) amax_merge(best, idx, __shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, idx, o));
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) {
        bv[warp] = best;
        bi[warp] = idx;
    }
    __syncthreads();
    if (warp == 0) {
        int nw = blockDim.x >> 5;
        best = lane < nw ? bv[lane] : -INFINITY;
        idx = lane < nw ? bi[lane] : 0x7fffffff;
        for (int o = 16; o > 0; o >>= 1) amax_merge(best, idx, __shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, idx, o));
    }
}
