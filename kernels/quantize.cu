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

// Row blockIdx.y of the input (a batched decode step prepares its rows side by side:
// row b at b·K of every output, b·K/32, b·K/256, b·K/16 of the scale arrays).
__device__ void prep_impl(const PrepArgs& g) {
    __shared__ double red[32];
    const size_t b = blockIdx.y, K = g.K;
    const float* x = (const float*)g.x + b * K;
    const float* nw = (const float*)g.norm_w;
    float scale = nw ? block_rms_scale(x, g.K, g.eps, red) : 1.0f;
    int warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    int first = blockIdx.x * nwarps + warp, stride = gridDim.x * nwarps;
    if (g.xf)
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < g.K; i += gridDim.x * blockDim.x)
            ((float*)g.xf)[b * K + i] = act_in(x, nw, scale, i);
    if (g.q0) stage_q8_0(x, nw, scale, g.K, (i8*)g.q0 + b * K, (float*)g.d0 + b * (K / 32), first, stride);
    if (g.qk)
        stage_q8_k(x, nw, scale, g.K, (i8*)g.qk + b * K, (float*)g.dk + b * (K / 256), (int*)g.bs + b * (K / 16),
                   first, stride);
}
