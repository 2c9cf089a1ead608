// argmax.cu — greedy sampling on the device: index of the largest logit (lowest index on
// ties, NaN never chosen; CPU twin: `argmax` in src/numerics.rs, which differs only when every
// logit is NaN: 0 there, 0x7fffffff here, which the next step refuses as outside the
// vocabulary), so only 4 bytes come back to the host per token. ARGMAX_CTAS CTAs
// each reduce a grid-strided share (4 loads in flight per thread) to one (value, index)
// pair; the last CTA to finish (atomic ticket) merges the pairs and resets the ticket, so a
// captured graph can replay it.
#include "argmax.cuh"

__device__ void argmax_impl(const ArgmaxArgs& g) {
    __shared__ float bv[32];
    __shared__ int bi[32];
    __shared__ bool last;
    const float* x = (const float*)g.x;
    float best = -INFINITY;
    int idx = 0x7fffffff;
    int stride = gridDim.x * blockDim.x;
    for (int i0 = blockIdx.x * blockDim.x + threadIdx.x; i0 < g.n; i0 += 4 * stride) {
        float v[4];
#pragma unroll
        for (int k = 0; k < 4; k++) v[k] = i0 + k * stride < g.n ? x[i0 + k * stride] : -INFINITY;
#pragma unroll
        for (int k = 0; k < 4; k++)
            if (i0 + k * stride < g.n) amax_merge(best, idx, v[k], i0 + k * stride);
    }
    block_amax(best, idx, bv, bi);
    float* pv = (float*)g.part;
    int* pi = (int*)(pv + gridDim.x);
    unsigned* ticket = (unsigned*)(pi + gridDim.x);
    if (threadIdx.x == 0) {
        pv[blockIdx.x] = best;
        pi[blockIdx.x] = idx;
        __threadfence();
        last = atomicAdd(ticket, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    best = -INFINITY;
    idx = 0x7fffffff;
    for (int c = threadIdx.x; c < gridDim.x; c += blockDim.x) amax_merge(best, idx, __ldcg(pv + c), __ldcg(pi + c));
    __syncthreads();
    block_amax(best, idx, bv, bi);
    if (threadIdx.x == 0) {
        ((int*)g.out)[0] = idx;
        *ticket = 0;
    }
}
