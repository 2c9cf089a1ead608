// matvec.cu — decode (one token) matrix-vector products over raw GGML blocks, one launch
// per fused group. The input was prepared by quantize.cu's prep kernel (RMSNorm-ed when the
// group has the norm prologue; quantized to Q8_0/Q8_K exactly as the CPU does under q8
// semantics; under f32 without a norm prologue it is the node input itself) and is read
// straight from global memory (L1/L2). The tile and work-item code is in matvec.cuh (shared
// with the persistent decode kernel); here CTAs loop over tiles grid-stride.
// CPU reference: a sequence of graph nodes, each defined in src/exec/interp/ops.rs —
// matvec_*: matmul of one row (EPI_NONE; after the final norm: fuse_norm_matmul), with
// EPI_ADD + add (O/down projection + residual: fuse_matmul_add), with EPI_SWIGLU two
// matmuls, silu, mul (gate, up: fuse_norm_gate_up) — fuse_* are the passes in src/sched;
// qkv_*: three matmuls, bias_add, rope (q, k), then the KV-cache write of kv_append
// (src/exec/interp/mod.rs) (fuse_qkv). The RMSNorm before them runs in quantize.cu's prep.
#include "matvec.cuh"

template <class W, int ACT, int EPI>
__device__ void matvec_impl(const MatvecArgs& g) {
    __shared__ float part[MATVEC_PART_FLOATS];
    int rows_per_cta = matvec_tile_rows<W>(g.K, g.ksplit);
    // With `prefetch` (a programmatic launch of one wave whose weights fit half the L2;
    // the host's rule, src/exec/cuda/groups.rs), the CTA's first tile of weights goes to L2
    // before the wait (common.cuh); the weights do not depend on the kernel before.
    if (g.prefetch && threadIdx.x < 32) l2_prefetch_rows<EPI>(g, blockIdx.x * rows_per_cta, rows_per_cta);
    grid_dep_enter();
    Act a = act_view(g.xf, g.q0, g.d0, g.qk, g.dk, g.bs);
    for (int base = blockIdx.x * rows_per_cta; base < g.rows; base += gridDim.x * rows_per_cta)
        matvec_tile<W, ACT, EPI>(g, a, base, part);
}

// ---- Fused attention input: RMSNorm → Q/K/V (+bias) → RoPE → KV-cache append --------

// K and V rows go to the cache in its element type KV (numerics.cuh).
template <class WQK, class WV, int ACT, class KV>
__device__ void qkv_impl(const QkvArgs& g) {
    Act a = act_view(g.xf, g.q0, g.d0, g.qk, g.dk, g.bs);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    // Each warp's first pair of weight rows to L2 before the wait (as in matvec_impl; the
    // grid is one wave on the models measured).
    if (blockIdx.x * nwarps + warp < qkv_items(g)) {
        QkvItem q = qkv_item(g, blockIdx.x * nwarps + warp);
        int rb;
        const u8* w = qkv_weights(g, q.which, rb);
        l2_prefetch_range(w + (size_t)q.r0 * rb, rb);
        l2_prefetch_range(w + (size_t)q.r1 * rb, rb);
    }
    grid_dep_enter();
    // One row: at *pos, or (a batched step of one row) at the position and cache slot in seq.
    const int* seq = (const int*)g.seq;
    int pos = seq ? seq[0] : *(const int*)g.pos;
    int crow = seq ? seq[1] + pos : pos;
    for (int it = blockIdx.x * nwarps + warp; it < qkv_items(g); it += gridDim.x * nwarps) {
        QkvItem q = qkv_item(g, it);
        int rb;
        const u8* w = qkv_weights(g, q.which, rb);
        float y0, y1;
        if (q.which == 2)
            pair_dot<WV, ACT>(w + (size_t)q.r0 * rb, w + (size_t)q.r1 * rb, g.K, a, y0, y1);
        else
            pair_dot<WQK, ACT>(w + (size_t)q.r0 * rb, w + (size_t)q.r1 * rb, g.K, a, y0, y1);
        if (lane == 0) qkv_store<KV>(g, q, y0, y1, pos, crow, 0);
    }
}
