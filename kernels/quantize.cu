// quantize.cu — activation preparation. The quantization is bit-identical to the CPU's
// (quantize_q8_0 / quantize_q8_k in src/quant/act.rs, through numerics.cuh) for the same
// f32 input; prep's RMSNorm prologue (rms_norm in src/exec/interp/ops.rs) sums the squares
// in f64 in another order, so its output can differ in the last bit, which is why fused
// groups have their own q8 band (q8_fused_norm in contracts/gpu_parity.yaml).
// - quantize: T rows to Q8_0 / Q8_K in global memory for the prefill GEMMs (a CTA a row);
// - prep: one row (decode; a row per grid layer in a batched step), optionally RMSNorm-ed first — the fused norm prologue of the
//   decode groups — written as f32 and/or Q8_0 and/or Q8_K for the matvec kernels, spread
//   over many CTAs (each CTA recomputes the row's RMS scale, then quantizes its blocks).
#include "quant.cuh"

__device__ void quantize_impl(const QuantizeArgs& g) {
    int t = blockIdx.x, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const float* x = (const float*)g.x + (size_t)t * g.K;
    if (g.q0) stage_q8_0(x, 0, 1.0f, g.K, (i8*)g.q0 + (size_t)t * g.K, (float*)g.d0 + (size_t)t * (g.K / 32), warp, nw);
    if (g.qk)
        stage_q8_k(x, 0, 1.0f, g.K, (i8*)g.qk + (size_t)t * g.K, (float*)g.dk + (size_t)t * (g.K / 256),
                   (int*)g.bs + (size_t)t * (g.K / 16), warp, nw);
}

// Brings into L1 the norm weights this thread applies below: its elements of the f32 copy,
// lane `lane` of its Q8_0 blocks (32 wide) and its eight of its Q8_K blocks (256 wide), as
// the loops of prep_impl, stage_q8_0 and stage_q8_k walk them. Weights only: the kernel
// before writes none of them, so prep issues this before its wait.
__device__ __forceinline__ void prep_norm_ahead(const PrepArgs& g, const float* nw, int first, int stride) {
    const int lane = threadIdx.x & 31;
    if (g.xf)
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.K; i += gridDim.x * blockDim.x) l1_prefetch(nw + i);
    if (g.q0)
        for (int b = first; b < g.K / 32; b += stride) l1_prefetch(nw + b * 32 + lane);
    if (g.qk)
        for (int b = first; b < g.K / 256; b += stride) l1_prefetch(nw + b * 256 + lane * 8);
}

// Row blockIdx.y of the input (a batched decode step prepares its rows side by side:
// row b at b·K of every output, b·K/32, b·K/256, b·K/16 of the scale arrays).
// The wrapper does not wait first (KernelId::enters_in_body): the norm weights are on their
// way into L1 before the wait, so the quantization after the row's RMS scale does not wait
// on DRAM for them (a norm weight row is read once per step: never in L2 by then).
__device__ void prep_impl(const PrepArgs& g) {
    __shared__ double red[32];
    const size_t b = blockIdx.y, K = g.K;
    const float* x = (const float*)g.x + b * K;
    const float* nw = (const float*)g.norm_w;
    int warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    int first = blockIdx.x * nwarps + warp, stride = gridDim.x * nwarps;
    if (nw) prep_norm_ahead(g, nw, first, stride);
    grid_dep_enter();
    float scale = nw ? block_rms_scale(x, g.K, g.eps, red) : 1.0f;
    if (g.xf)
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.K; i += gridDim.x * blockDim.x)
            ((float*)g.xf)[b * K + i] = act_in(x, nw, scale, i);
    if (g.q0) stage_q8_0(x, nw, scale, g.K, (i8*)g.q0 + b * K, (float*)g.d0 + b * (K / 32), first, stride);
    if (g.qk)
        stage_q8_k(x, nw, scale, g.K, (i8*)g.qk + b * K, (float*)g.dk + b * (K / 256), (int*)g.bs + b * (K / 16),
                   first, stride);
}
