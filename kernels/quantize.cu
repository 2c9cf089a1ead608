// quantize.cu — activation quantization of T rows into global memory for the prefill
// matmuls: Q8_0 (legacy weights) and Q8_K (k-quants), bit-identical to src/quant/act.rs.
// One CTA per row.
#include "quant.cuh"

struct QuantizeArgs {
    u64 x;                  // f32 [T, K]
    u64 q0, d0, qk, dk, bs; // outputs (0 = not needed)
    int K, T;
};

__device__ void quantize_impl(const QuantizeArgs& g) {
    int t = blockIdx.x;
    const float* x = (const float*)g.x + (size_t)t * g.K;
    if (g.q0) stage_q8_0(x, 0, 1.0f, g.K, (i8*)g.q0 + (size_t)t * g.K, (float*)g.d0 + (size_t)t * (g.K / 32));
    if (g.qk)
        stage_q8_k(x, 0, 1.0f, g.K, (i8*)g.qk + (size_t)t * g.K, (float*)g.dk + (size_t)t * (g.K / 256),
                   (int*)g.bs + (size_t)t * (g.K / 16));
}
