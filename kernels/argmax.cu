// argmax.cu — greedy sampling on the device: index of the largest logit (lowest index on
// ties, as src/generate.rs argmax), so only 4 bytes come back to the host per token.
#include "common.cuh"

struct ArgmaxArgs {
    u64 x, out;
    int n;
};

__device__ void argmax_impl(const ArgmaxArgs& g) {
    __shared__ float bv[32];
    __shared__ int bi[32];
    const float* x = (const float*)g.x;
    float best = -INFINITY;
    int idx = 0x7fffffff;
    for (int i = threadIdx.x; i < g.n; i += blockDim.x) {
        float v = x[i];
        if (v > best || (v == best && i < idx)) { best = v; idx = i; }
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, best, o);
        int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ov > best || (ov == best && oi < idx)) { best = ov; idx = oi; }
    }
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) { bv[warp] = best; bi[warp] = idx; }
    __syncthreads();
    if (warp == 0) {
        int nw = blockDim.x >> 5;
        best = lane < nw ? bv[lane] : -INFINITY;
        idx = lane < nw ? bi[lane] : 0x7fffffff;
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, best, o);
            int oi = __shfl_xor_sync(0xffffffffu, idx, o);
            if (ov > best || (ov == best && oi < idx)) { best = ov; idx = oi; }
        }
        if (lane == 0) ((int*)g.out)[0] = idx;
    }
}
