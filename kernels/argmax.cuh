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

// The end of a chained one-row decode step (src/exec/cuda/chain.rs), by the thread that
// writes the token: the token becomes the next step's input, the position advances, and
// the token goes to the host-mapped ring at the step's position, so the host can queue
// step k + 1 before it reads token k. An id past the vocabulary (no finite logit) feeds
// token 0 to the next step, whose result the host drops: it reads the id from the ring and
// stops with an error. `pos` 0: not chained (every other step; the host uploads the token
// and the position before each of those).
__device__ __forceinline__ void chain_advance(u64 pos, u64 tokens, u64 ring, int tok, int vocab) {
    if (!pos) return;
    const int p = *(const int*)pos;
    ((volatile int*)ring)[(unsigned)p % CHAIN_RING] = tok;
    *(int*)tokens = (unsigned)tok < (unsigned)vocab ? tok : 0;
    *(int*)pos = p + 1;
}
