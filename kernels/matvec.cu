// matvec.cu — decode (one token) matrix-vector products over raw GGML blocks, one launch
// per fused group. The input was prepared by quantize.cu's prep kernel and is read straight
// from global memory (L1/L2). The tile and work-item code is in matvec.cuh (shared with the
// persistent decode kernel); here CTAs loop over tiles grid-stride.
// CPU reference: src/exec/interp/ops.rs (matmul, bias_add, add, silu, mul, rope).
#include "matvec.cuh"

template <class W, int ACT, int EPI>
__device__ void matvec_impl(const MatvecArgs& g) {
    __shared__ float part[MATVEC_PART_FLOATS];
    int rows_per_cta = matvec_tile_rows<W>(g.K, g.ksplit);
    Act a = act_view(g.xf, g.q0, g.d0, g.qk, g.dk, g.bs);
    for (int base = blockIdx.x * rows_per_cta; base < g.rows; base += gridDim.x * rows_per_cta)
        matvec_tile<W, ACT, EPI>(g, a, base, part);
}

template <class WQK, class WV, int ACT>
__device__ void qkv_impl(const QkvArgs& g) {
    Act a = act_view(g.xf, g.q0, g.d0, g.qk, g.dk, g.bs);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    int pos = *(const int*)g.pos;
    for (int it = blockIdx.x * nwarps + warp; it < qkv_items(g); it += gridDim.x * nwarps) {
        QkvItem q = qkv_item(g, it);
        int rb;
        const u8* w = qkv_weights(g, q.which, rb);
        float y0, y1;
        if (q.which == 2)
            pair_dot<WV, ACT>(w + (size_t)q.r0 * rb, w + (size_t)q.r1 * rb, g.K, a, y0, y1);
        else
            pair_dot<WQK, ACT>(w + (size_t)q.r0 * rb, w + (size_t)q.r1 * rb, g.K, a, y0, y1);
        if (lane == 0) qkv_store(g, q, y0, y1, pos);
    }
}
