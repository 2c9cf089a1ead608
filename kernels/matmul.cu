// matmul.cu — prefill (T tokens) products: y[t][r] = W[r]·x[t]. The activations were
// staged in global memory by quantize.cu (q8) or are the f32 rows (f32). Each warp computes
// one weight row for a tile of TT tokens, so a weight block is fetched once per tile; a
// tile's missing tokens (T not a multiple of TT, or a batched decode step of fewer than 8
// sequences) are skipped, and each token's sum is the same whatever the tile holds.
// CPU reference: src/exec/interp/ops.rs (matmul).
#include "quant.cuh"

#define TT 8

template <class W, int ACT>
__device__ void matmul_impl(const MatmulArgs& g) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    int r = blockIdx.x * nwarps + warp;
    int t0 = blockIdx.y * TT;
    if (r >= g.rows) return;
    const u8* row = (const u8*)g.w + (size_t)r * g.row_bytes;
    float acc[TT];
    Act a[TT];
    for (int t = 0; t < TT; t++) {
        int tt = min(t0 + t, g.T - 1);
        acc[t] = 0.0f;
        a[t].xf = (const float*)g.xf + (size_t)tt * g.K;
        a[t].q0 = (const i8*)g.q0 + (size_t)tt * g.K;
        a[t].d0 = (const float*)g.d0 + (size_t)tt * (g.K / 32);
        a[t].qk = (const i8*)g.qk + (size_t)tt * g.K;
        a[t].dk = (const float*)g.dk + (size_t)tt * (g.K / 256);
        a[t].bs = (const int*)g.bs + (size_t)tt * (g.K / 16);
    }
    const int nt = min(TT, g.T - t0);
    for (int u = lane; u < g.K / W::UNIT; u += 32)
#pragma unroll
        for (int t = 0; t < TT; t++)
            if (t < nt) {
                if constexpr (ACT == ACT_Q8)
                    kq_add<W>(acc[t], W::wload(row, u), W::aload(a[t], u));
                else
                    acc[t] += W::f32(row, u, a[t].xf);
            }
    for (int t = 0; t < nt; t++) {
        float v = group_sum<KQuadAct<W, ACT>::v>(acc[t], 32);
        if (lane == 0) ((float*)g.out)[(size_t)(t0 + t) * g.rows + r] = v;
    }
}
